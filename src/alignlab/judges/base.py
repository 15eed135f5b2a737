"""The judge interface: anything that turns completions into feedback.

``score(prompts, completions)`` gives one scalar ``[N]`` (or a vector of named attributes ``[N, A]``) per
completion; ``prefer(prompt, a, b)`` gives P(a ≻ b). Scalar judges derive ``prefer`` from their scores
through the Bradley–Terry link σ(s_a − s_b); preference models (GPM, PairPM) implement it directly and
may not have a ``score``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from alignlab.data.records import Prompt


class Judge:
    """Base class: subclasses override ``score`` (scalar judges) or ``prefer_many`` (preference models)."""

    name: str = "judge"
    attribute_names: list[str] | None = None

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} gives preferences, not scores; use prefer()")

    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        """P(a_i ≻ b_i) for each i, [N]; default: σ(s(a) − s(b)) from scalar scores."""
        check_lengths(prompts, a, b)
        n = len(prompts)
        scores = self.score(list(prompts) + list(prompts), list(a) + list(b))
        if scores.dim() != 1:
            raise ValueError(
                f"{type(self).__name__} scores {scores.shape[-1]} attributes; pick a direction or a gate "
                "(alignlab.judges.armorm) to get one scalar before comparing"
            )
        return torch.sigmoid(scores[:n] - scores[n:])

    def prefer(self, prompt: Prompt, a: str, b: str) -> float:
        return float(self.prefer_many([prompt], [a], [b])[0])


def check_lengths(prompts: Sequence[Prompt], *columns: Sequence[str]) -> None:
    for i, column in enumerate(columns):
        if len(column) != len(prompts):
            raise ValueError(f"got {len(prompts)} prompts but {len(column)} completions in argument {i + 2}")
