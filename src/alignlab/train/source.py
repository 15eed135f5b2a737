"""Batch sources: what hands the one loop its data, step by step (docs/loop.md).

A source's :meth:`BatchSource.next` returns the step's global batch as a :class:`StepBatch` — tokenised
groups and the records they came from — not indices into one fixed dataset, so an online source (prompts
→ sampler → judge → records) plugs in exactly where the offline dataset does. The loop:

1. calls :meth:`BatchSource.start` once, after the policy, engine and reference exist, with the
   :class:`~alignlab.train.context.LoopContext` (an online source keeps it to sample from the policy);
2. asks :meth:`BatchSource.planned_steps` for the run's length when ``train.steps`` is not set;
3. each step: ``batch = source.next()``, trains on it, then calls
   :meth:`BatchSource.after_optimizer_step` (an online source re-samples every
   ``epochs_per_rollout × minibatches`` steps);
4. saves :meth:`BatchSource.state_dict` in every checkpoint and restores it with
   :meth:`BatchSource.load_state_dict` on ``--resume`` (the data position; for an online source the live
   rollout and its RNG), so a resumed run sees exactly the batches it would have seen.

Every process calls ``next()`` and must get the same global batch (seeded sources do); the loop gives each
process its share, ``groups[rank::world]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup

if TYPE_CHECKING:
    from alignlab.train.context import LoopContext
    from alignlab.train.data import PreparedData


@dataclass
class StepBatch:
    """One optimiser step's global batch.

    ``groups`` are the step's tokenised groups (prompt ids, completion ids, roles) in order; each group's
    ``record_index`` points into ``records``, which carry the feedback (ranking, labels, scores, weight,
    extras). ``reference_rows``: each group's row in the source's cached reference log-prob table (the
    offline dataset's group index), or None when the source has no such table (the reference is then run
    live). ``metrics`` are logged with the step (the offline source's epoch; a rollout's mean reward).
    """

    records: Sequence[Record]
    groups: list[TokenizedGroup]
    reference_rows: list[int] | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.groups)


@runtime_checkable
class BatchSource(Protocol):
    """What the loop needs from a source (see the module docstring for when each is called)."""

    def start(self, context: LoopContext) -> None: ...

    def planned_steps(self, epochs: float) -> int: ...

    def next(self) -> StepBatch: ...

    def after_optimizer_step(self, step: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OfflineSource:
    """Seeded shuffled epochs over a prepared dataset; the last partial batch of an epoch wraps."""

    def __init__(self, data: PreparedData, batch_size: int, seed: int = 0, shuffle: bool = True):
        if not data.groups:
            raise ValueError("the training data has no usable records after loading and tokenisation")
        self.data, self.batch_size, self.seed, self.shuffle = data, batch_size, seed, shuffle
        self.num_groups = len(data.groups)
        self.epoch, self.offset = 0, 0
        self._order = self._epoch_order(0)

    def start(self, context: LoopContext) -> None:
        """The offline dataset needs nothing from the loop."""

    def planned_steps(self, epochs: float) -> int:
        return max(1, math.ceil(epochs * self.num_groups / self.batch_size))

    def _epoch_order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_groups))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_groups, generator=generator).tolist()

    def next_ids(self) -> list[int]:
        """The next global batch as dataset group indices."""
        out: list[int] = []
        while len(out) < self.batch_size:
            if self.offset >= self.num_groups:
                self.epoch += 1
                self.offset = 0
                self._order = self._epoch_order(self.epoch)
            take = min(self.batch_size - len(out), self.num_groups - self.offset)
            out += self._order[self.offset : self.offset + take]
            self.offset += take
        return out

    def next(self) -> StepBatch:
        ids = self.next_ids()
        groups = [self.data.groups[i] for i in ids]
        return StepBatch(self.data.records, groups, reference_rows=ids, metrics={"epoch": self.epochs_done})

    def after_optimizer_step(self, step: int) -> None:
        """The offline dataset does not change with the policy."""

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.offset / self.num_groups

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._order = self._epoch_order(self.epoch)
