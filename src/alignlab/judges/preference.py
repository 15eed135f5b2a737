"""Preference models that compare two completions directly: GPM (embeddings) and PairPM (one input)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.data.reward_templates import PAIR_PM_TEMPLATE, render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.judges.saved_models import load_trained_judge
from alignlab.models.reward import RewardModel
from alignlab.scoring.gpm import gpm_score
from alignlab.scoring.rows import default_truncation, score_rows


@register_judge(
    "gpm",
    paper="Zhang et al. 2024 'General Preference Modeling with Preference Representations' (arXiv 2410.02197)",
    kind="preferences",
)
class GPMJudge(Judge):
    """P(a ≻ b) = σ(v_aᵀ Rᵀ v_b / τ) from a reward model whose head outputs preference embeddings v ∈ R^2k."""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str  # a run trained with the gpm objective, or its model/ folder
        device: str = "cpu"
        tau: float = Field(1.0, gt=0)
        normalize: bool = False
        batch_size: int = Field(16, gt=0)
        max_length: int | None = Field(None, gt=1)

    def __init__(
        self,
        model: RewardModel,
        tokenizer: Any,
        tau: float = 1.0,
        normalize: bool = False,
        batch_size: int = 16,
        max_length: int | None = None,
    ):
        if model.num_attributes % 2:
            raise ValueError(
                f"a GPM needs an even embedding size, the model has {model.num_attributes} outputs"
            )
        self.model, self.tokenizer, self.tau, self.normalize, self.batch_size = (
            model,
            tokenizer,
            tau,
            normalize,
            batch_size,
        )
        self.truncation = default_truncation(model, max_length)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", **kwargs: Any) -> GPMJudge:
        return load_trained_judge(cls, path, device, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> GPMJudge:
        return cls.load(settings.path, **settings.model_dump(exclude={"path"}))

    def embed(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        v = score_rows(
            self.model,
            self.tokenizer,
            prompts,
            completions,
            frozenset({"rewards"}),
            self.batch_size,
            self.truncation,
        ).rewards
        return torch.nn.functional.normalize(v, dim=-1) if self.normalize else v

    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        check_lengths(prompts, a, b)
        n = len(prompts)
        v = self.embed(list(prompts) * 2, list(a) + list(b))
        return torch.sigmoid(gpm_score(v[:n], v[n:]) / self.tau)


@register_judge(
    "pair_pm",
    paper="Dong et al. 2024 'RLHF Workflow' (arXiv 2405.07863); Munos et al. 2023 NLHF (arXiv 2312.00886)",
    kind="preferences",
)
class PairPMJudge(Judge):
    """A causal LM reading (x, A, B) in one input; P(a ≻ b) = ½[P(A | a, b) + P(B | b, a)] (order-symmetrised).

    P(A | ·) = softmax(ℓ_A/T, ℓ_B/T)[A], ℓ the log-prob of the label completion exactly as the ``pair_pm``
    objective trains it. By construction P(a ≻ b) + P(b ≻ a) = 1 and P(a ≻ a) = 1/2.
    Checked: RLHFlow/RLHF-Reward-Modeling pair-pm/README.md (A/B token logits, softmax, swapped order).
    """

    def __init__(
        self,
        lm: Any,
        tokenizer: Any,
        template: str = PAIR_PM_TEMPLATE,
        temperature: float = 1.0,
        batch_size: int = 16,
    ):
        self.lm, self.tokenizer, self.template = lm, tokenizer, template
        self.temperature, self.batch_size = temperature, batch_size

    def _p_first(self, prompts: Sequence[Prompt], first: Sequence[str], second: Sequence[str]) -> Tensor:
        texts = [
            self.template.format(prompt=render_context(p), a=x, b=y)
            for p, x, y in zip(prompts, first, second)
        ]
        n = len(texts)
        logps = score_rows(
            self.lm, self.tokenizer, texts * 2, ["A"] * n + ["B"] * n, batch_size=self.batch_size
        ).logps
        return torch.sigmoid((logps[:n] - logps[n:]) / self.temperature)

    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        check_lengths(prompts, a, b)
        forward = self._p_first(prompts, a, b)  # P(label A | A = a, B = b)
        backward = self._p_first(prompts, b, a)  # P(label A | A = b, B = a) = 1 − P(label B | …)
        return 0.5 * (forward + (1.0 - backward))
