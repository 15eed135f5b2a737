"""The judge interface: anything that turns completions into feedback.

``score(prompts, completions)`` gives one scalar ``[N]`` (or a vector of named attributes ``[N, A]``) per
completion; ``prefer(prompt, a, b)`` gives P(a ≻ b). Scalar judges derive ``prefer`` from their scores
through the Bradley–Terry link σ(s_a − s_b); preference models (GPM, PairPM) implement it directly and
may not have a ``score``.

A trainer that has more than the text (the sampled token ids, the record's other columns such as a
ground-truth answer, the training step) calls ``score_batch(JudgeBatch(...))``; a judge that reads those
overrides it, every other judge scores the text only (see docs/judges.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from alignlab.data.records import Prompt


@dataclass(frozen=True)
class JudgeBatch:
    """Everything a trainer knows about N completions to be scored; one entry per completion.

    ``completion_ids[i]``: the token ids of completion i exactly as sampled (None when the completions are
    text only). ``columns[name][i]``: the other fields of the record completion i answers (e.g. a
    ``solution`` column), repeated for each of that record's completions. ``step``: the optimiser step the
    completions were sampled at (None outside training).
    """

    prompts: Sequence[Prompt]
    completions: Sequence[str]
    completion_ids: Sequence[Sequence[int]] | None = None
    columns: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    step: int | None = None

    def __post_init__(self) -> None:
        check_lengths(self.prompts, self.completions)
        if self.completion_ids is not None and len(self.completion_ids) != len(self.prompts):
            raise ValueError(
                f"got {len(self.prompts)} prompts but {len(self.completion_ids)} rows of completion ids"
            )
        for name, values in self.columns.items():
            if len(values) != len(self.prompts):
                raise ValueError(
                    f"column '{name}' has {len(values)} values for {len(self.prompts)} completions"
                )


class Judge:
    """Base class: subclasses override ``score`` (scalar judges) or ``prefer_many`` (preference models)."""

    name: str = "judge"
    attribute_names: list[str] | None = None

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} gives preferences, not scores; use prefer()")

    def score_batch(self, batch: JudgeBatch) -> Tensor:
        """``score`` with the trainer's context; judges that read ids, columns or the step override it."""
        return self.score(batch.prompts, batch.completions)

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
