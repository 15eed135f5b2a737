"""An objective's step statistics combined over a step's micro-batches and processes, then folded once.

Additive sums are added over the micro-batches and all-reduced. Per-example rows
(``StepStatistics(per_example=True)``) are keyed by their record's place in the step's global batch and
their rank within that record, gathered from every process (uneven sizes: each process writes its rows
into a zero table at its offset, and the tables are all-reduced, which gloo and nccl both do), and sorted
by that key: the fold sees the same rows in the same order whatever the cut. Its per-example results go
back to the micro-batch each row came from.
"""

from __future__ import annotations

import torch
from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.objectives.state import ExampleRows
from alignlab.scoring.scores import Scores
from alignlab.train.context import LoopContext


class StepCollector:
    """Collects the statistics of the parts folded before (``after_step`` False) or after the step."""

    def __init__(self, context: LoopContext, after_step: bool):
        self.context = context
        self.after_step = after_step
        self.items: list[tuple[list[int], dict[int, Tensor | ExampleRows]]] = []

    def add(self, cut: list[int], scores: Scores, feedback: Feedback) -> None:
        """One micro-batch: ``cut`` the places of its groups in the step's global batch."""
        self.items.append((cut, self.context.objective.step_statistics(scores, feedback, self.after_step)))

    def fold(self) -> list[dict[int, Tensor]]:
        """Fold the whole step into the objective's state (every process calls this once per step, in
        step); returns, for each micro-batch added, its rows of the per-example results by part index."""
        objective = self.context.objective
        combined: dict[int, Tensor] = {}
        places: dict[int, list[Tensor]] = {}
        for i, part in enumerate(objective.parts):
            if not part.folds(self.after_step):
                continue
            stats = part.spec.step_statistics
            assert stats is not None
            if stats.per_example:
                combined[i], places[i] = self._rows(i)
            else:
                total = torch.zeros(stats.size or 0, dtype=torch.float64)
                for _, values in self.items:
                    total = total + values[i]  # type: ignore[operator]
                combined[i] = self._all_reduce(total)
        results = objective.fold_step_statistics(combined, self.after_step)
        return [{i: results[i][places[i][k]] for i in results} for k in range(len(self.items))]

    def _rows(self, part: int) -> tuple[Tensor, list[Tensor]]:
        """Every process's rows of ``part`` in the global batch's order, and where each micro-batch's
        rows landed in it."""
        keyed, keys = [], []
        for cut, values in self.items:
            rows = values[part]
            assert isinstance(rows, ExampleRows)
            place = [cut[int(g)] for g in rows.groups]
            seen: dict[int, int] = {}
            rank_in_record = []
            for p in place:
                rank_in_record.append(seen.get(p, 0))
                seen[p] = rank_in_record[-1] + 1
            key = torch.tensor([place, rank_in_record], dtype=torch.float64).T.reshape(-1, 2)
            keys.append([tuple(k) for k in key.long().tolist()])
            keyed.append(torch.cat([key, rows.values], 1))
        width = max((t.shape[1] for t in keyed), default=2)
        local = torch.cat(keyed) if keyed else torch.zeros(0, width, dtype=torch.float64)
        table = self._gather(local)
        span = float(table[:, 1].max()) + 1 if table.shape[0] else 1.0
        table = table[torch.argsort(table[:, 0] * span + table[:, 1], stable=True)]
        where = {(int(a), int(b)): n for n, (a, b) in enumerate(table[:, :2].long().tolist())}
        places = [torch.tensor([where[k] for k in item], dtype=torch.long) for item in keys]
        return table[:, 2:], places

    def _all_reduce(self, values: Tensor) -> Tensor:
        acc = self.context.accelerator
        if acc.num_processes == 1:
            return values
        return acc.reduce(values.to(self.context.device), reduction="sum").cpu()

    def _gather(self, rows: Tensor) -> Tensor:
        """All processes' rows, process by process (uneven counts)."""
        acc = self.context.accelerator
        if acc.num_processes == 1:
            return rows
        shape = torch.zeros(acc.num_processes, 2, dtype=torch.float64)
        shape[acc.process_index] = torch.tensor([rows.shape[0], rows.shape[1]], dtype=torch.float64)
        shape = self._all_reduce(shape)
        counts = [int(n) for n in shape[:, 0].tolist()]
        table = torch.zeros(sum(counts), int(shape[:, 1].max()), dtype=torch.float64)
        offset = sum(counts[: acc.process_index])
        table[offset : offset + rows.shape[0], : rows.shape[1]] = rows
        return self._all_reduce(table)
