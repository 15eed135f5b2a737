"""A trained reward model as a judge, loaded from a run directory (or its ``model/`` folder) by path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.preference import GPMJudge
from alignlab.judges.registry import register_judge
from alignlab.judges.saved_models import load_trained_judge, resolve_model_dir, trained_objectives
from alignlab.models.reward import RewardModel
from alignlab.scoring.rows import default_truncation, score_rows


@register_judge(
    "reward_model", paper="Stiennon et al. 2020 (arXiv 2009.01325); Ouyang et al. 2022 (arXiv 2203.02155)"
)
class RewardModelJudge(Judge):
    """A reward model (scalar or one output per named attribute) scoring each (prompt, completion).

    Config: ``{name: reward_model, path: runs/rm}`` (a run directory or its ``model/`` folder; a GPM run
    loads as the ``gpm`` judge). ``max_length``: cut inputs there (default: as the training run did).
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str
        device: str = "cpu"
        batch_size: int = Field(16, gt=0)
        max_length: int | None = Field(None, gt=1)

    def __init__(
        self, model: RewardModel, tokenizer: Any, batch_size: int = 16, max_length: int | None = None
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.truncation = default_truncation(model, max_length)
        self.attribute_names = model.attribute_names

    @classmethod
    def load(
        cls, path: str | Path, device: str = "cpu", batch_size: int = 16, max_length: int | None = None
    ) -> RewardModelJudge:
        return load_trained_judge(cls, path, device, batch_size=batch_size, max_length=max_length)

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> Judge:
        return load_judge(settings.path, **settings.model_dump(exclude={"path"}))

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        scores = score_rows(
            self.model,
            self.tokenizer,
            prompts,
            completions,
            frozenset({"rewards"}),
            self.batch_size,
            self.truncation,
        )
        return scores.rewards

    def embed(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        """The pooled hidden state of each completion (ArmoRM's frozen embeddings)."""
        scores = score_rows(
            self.model,
            self.tokenizer,
            prompts,
            completions,
            frozenset({"hidden"}),
            self.batch_size,
            self.truncation,
        )
        return scores.hidden


def load_judge(path: str | Path, **kwargs: Any) -> Judge:
    """A judge from a path: a reward-model run directory or model folder (GPM heads included)."""
    directory = resolve_model_dir(path)
    if "gpm" in trained_objectives(directory):
        return GPMJudge.load(directory, **kwargs)
    return RewardModelJudge.load(directory, **kwargs)
