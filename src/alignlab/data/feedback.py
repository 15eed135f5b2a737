"""The feedback of a batch as tensors, aligned with its completions (flat, ``[N]``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Feedback:
    group_index: Tensor  # [N] long: the group (record) each completion belongs to
    weight: Tensor  # [G] per-record weight
    ranks: Tensor | None = None  # [N] float, lower is better, ties equal; NaN where a group has none
    labels: Tensor | None = None  # [N] float 1 = good, 0 = bad; NaN where unknown
    ratings: Tensor | None = None  # [N, A] named ratings; NaN where missing
    rating_names: list[str] = field(default_factory=list)
    margins: Tensor | None = None  # [G] given preference margin (e.g. TRL's `margin` column)
    token_weights: Tensor | None = None  # [N, T] span feedback per completion token
    roles: list[str] = field(default_factory=list)  # [N] "" for a scored completion, else its aux role
    extras: dict[str, Tensor] = field(
        default_factory=dict
    )  # [N] per completion, from Record.extras; NaN if none
    # Online training: per-completion rollout tensors ([N] or [N, T], T = the batch's longest completion)
    # computed when the rollout was sampled (old and reference log-probs, advantages, returns, values).
    rollout: dict[str, Tensor] = field(default_factory=dict)

    @property
    def num_groups(self) -> int:
        return int(self.weight.shape[0])

    @property
    def num_completions(self) -> int:
        return int(self.group_index.shape[0])

    def role_mask(self, role: str = "") -> Tensor:
        if not self.roles:
            return (
                torch.ones(self.num_completions, dtype=torch.bool)
                if role == ""
                else torch.zeros(self.num_completions, dtype=torch.bool)
            )
        return torch.tensor([r == role for r in self.roles], dtype=torch.bool)

    @classmethod
    def for_pairs(cls, num_pairs: int, weight: Tensor | None = None) -> Feedback:
        """Feedback of P pairs laid out chosen, rejected, chosen, rejected, ..."""
        group_index = torch.arange(num_pairs).repeat_interleave(2)
        ranks = torch.tensor([0.0, 1.0]).repeat(num_pairs)
        return cls(
            group_index=group_index, weight=torch.ones(num_pairs) if weight is None else weight, ranks=ranks
        )
