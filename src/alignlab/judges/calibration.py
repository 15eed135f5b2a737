"""Calibrate-and-transform rewards (InfAlign/CTRL): a reward's rank among reference samples, transformed."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from alignlab.data.reward_templates import render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge

TRANSFORMS = ("identity", "exp", "neg_exp")


@register_judge(
    "ctrl_reward_calibration",
    paper="Balashankar et al. 2024 InfAlign / CTRL (arXiv 2412.19792)",
)
class CalibratedRewardJudge(Judge):
    """c(x, y) = (1/N) Σ_j 1[r(x, y'_j) ≤ r(x, y)] over reference samples y'_j ~ π_ref(·|x); R = Φ(c).

    Φ: ``identity``; ``exp`` = exp(t·c) (best-of-N win rate); ``neg_exp`` = −exp(−t·c) (worst-of-N).
    c is invariant to any increasing transform of r. Checked against the METHODS block (paper recall;
    transform forms unverified).
    """

    def __init__(
        self,
        base: Judge,
        references: Callable[[Prompt], Sequence[str]] | dict[str, Sequence[str]],
        transform: str = "identity",
        t: float = 1.0,
    ):
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got '{transform}'")
        self.base, self.references, self.transform, self.t = base, references, transform, t

    def _references(self, prompt: Prompt) -> list[str]:
        if callable(self.references):
            refs = list(self.references(prompt))
        else:
            refs = list(self.references.get(render_context(prompt), []))
        if not refs:
            raise ValueError(f"no reference samples for prompt {render_context(prompt)[:60]!r}")
        return refs

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        own = self.base.score(prompts, completions)
        out = []
        for i, prompt in enumerate(prompts):
            refs = self._references(prompt)
            ref_scores = self.base.score([prompt] * len(refs), refs)
            c = float((ref_scores <= own[i]).float().mean())
            if self.transform == "exp":
                c = math.exp(self.t * c)
            elif self.transform == "neg_exp":
                c = -math.exp(-self.t * c)
            out.append(c)
        return torch.tensor(out, dtype=torch.float32)
