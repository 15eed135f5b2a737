"""A batch source that mixes fixed data with rollouts: every step's batch is the rollout source's minibatch
plus ``online.offline_per_step`` groups of ``data.train`` (seeded shuffled epochs, as offline training
draws them). C-RLFT uses it for its expert class beside the policy's own samples; any method whose rollout
plan sets ``mixes_offline`` gets it.

The two sources keep their own positions and seeds (both go into the checkpoint), so a resumed run sees the
same mixed batches. A mixed batch carries no per-completion rollout tensors (advantages, old log-probs):
the methods that mix read only their records' demonstrations and weights, and a batch whose groups
half have such tensors could not be stacked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.train.source import BatchSource, OfflineSource, StepBatch


class MixedSource:
    """``rollouts``' minibatch first, then ``offline``'s batch, one record list for both (see the module)."""

    def __init__(self, rollouts: BatchSource, offline: OfflineSource):
        self.rollouts, self.offline = rollouts, offline

    def start(self, context: Any) -> None:
        self.rollouts.start(context)
        self.offline.start(context)

    def planned_steps(self, epochs: float) -> int:
        """The run's length is the rollouts' (``epochs`` passes over the prompt set)."""
        return self.rollouts.planned_steps(epochs)

    def next(self) -> StepBatch:
        online, fixed = self.rollouts.next(), self.offline.next()
        records: list[Record] = []
        groups: list[TokenizedGroup] = []
        for batch in (online, fixed):
            for group in batch.groups:
                records.append(batch.records[group.record_index])
                groups.append(replace(group, record_index=len(records) - 1, rollout=None))
        metrics = {**online.metrics, "mix/rollout_groups": float(len(online.groups))}
        metrics["mix/offline_groups"] = float(len(fixed.groups))
        metrics["mix/offline_epoch"] = float(fixed.metrics.get("epoch", 0.0))  # passes over data.train
        return StepBatch(records, groups, reference_rows=None, metrics=metrics)

    def after_optimizer_step(self, step: int) -> None:
        self.rollouts.after_optimizer_step(step)
        self.offline.after_optimizer_step(step)

    def state_dict(self) -> dict[str, Any]:
        return {"rollouts": self.rollouts.state_dict(), "offline": self.offline.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rollouts.load_state_dict(state["rollouts"])
        self.offline.load_state_dict(state["offline"])
