"""A trained reward model as a judge, loaded from a run directory (or its ``model/`` folder) by path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.models.reward import RewardModel, is_reward_model_dir
from alignlab.scoring.rows import default_truncation, score_rows


def resolve_model_dir(path: str | Path) -> Path:
    """``path`` itself if it holds a saved reward model, else its ``model/`` folder (a run directory)."""
    p = Path(path).expanduser()
    if is_reward_model_dir(p):
        return p
    if is_reward_model_dir(p / "model"):
        return p / "model"
    raise FileNotFoundError(
        f"{p} holds no reward model: give a run directory trained with a reward objective (bt, …) or its "
        "model/ folder (it must contain alignlab_reward_model.json)"
    )


@register_judge(
    "reward_model", paper="Stiennon et al. 2020 (arXiv 2009.01325); Ouyang et al. 2022 (arXiv 2203.02155)"
)
class RewardModelJudge(Judge):
    """A reward model (scalar or one output per named attribute) scoring each (prompt, completion)."""

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
        from alignlab.judges.preference import GPMJudge

        return GPMJudge.load(directory, **kwargs)
    return RewardModelJudge.load(directory, **kwargs)


def trained_objectives(model_dir: Path) -> list[str]:
    """The objective names of the run that saved ``model_dir`` (its run directory's config.yaml), if known."""
    import yaml

    config = model_dir.parent / "config.yaml"
    if not config.exists():
        return []
    entries = (yaml.safe_load(config.read_text()) or {}).get("objectives") or []
    return [e if isinstance(e, str) else str(e.get("name")) for e in entries]


def load_trained_judge(cls: Any, path: str | Path, device: str = "cpu", **kwargs: Any) -> Any:
    """``cls(model, tokenizer, **kwargs)`` for the reward model saved at ``path``, cutting inputs as its
    training run did unless ``max_length`` is given."""
    from transformers import AutoTokenizer

    directory = resolve_model_dir(path)
    model = RewardModel.from_pretrained(directory, device)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    judge = cls(model, tokenizer, **kwargs)
    trained = training_truncation(directory)
    if trained is not None and kwargs.get("max_length") is None:
        judge.truncation = trained  # score inputs exactly as they were cut in training
    return judge


def training_truncation(model_dir: Path) -> Any:
    """The truncation the run that saved ``model_dir`` trained with (from its config.yaml), if known."""
    import yaml

    from alignlab.data.tokenize import Truncation

    config = model_dir.parent / "config.yaml"
    if not config.exists():
        return None
    data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
    if "max_length" not in data:
        return None
    return Truncation(
        max_length=int(data["max_length"]),
        max_prompt_length=int(data.get("max_prompt_length", 512)),
        prompt=data.get("truncate_prompt", "keep_end"),
        completion="keep_start",
    )
