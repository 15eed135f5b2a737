"""An objective's running state (saved in checkpoints) and how the loop updates it once per step.

An objective with a ``state`` parameter receives an :class:`ObjectiveState`: a dict that persists across
training steps (running means, EMA statistics); during evaluation it is a throw-away copy with
``training`` False. An objective whose state must not depend on how a step is cut registers
:class:`StepStatistics` (``@objective(..., step_statistics=...)``): the loop folds the whole step's global
batch into the state before any micro-batch's loss (docs/loop.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


class ObjectiveState(dict):
    """An objective's running state; ``training`` is False during evaluation (then it is a throw-away copy)."""

    training: bool = True

    def copy_for_eval(self) -> ObjectiveState:
        import copy

        out = ObjectiveState(copy.deepcopy(dict(self)))
        out.training = False
        return out


@dataclass
class ExampleRows:
    """One batch's per-example statistics (``StepStatistics(per_example=True)``): ``values`` [n, width],
    one row per example of the objective's view, in the view's order; ``groups`` [n] the batch group
    (record) of each row, which the loop maps to the record's place in the step's global batch."""

    values: Tensor
    groups: Tensor


@dataclass(frozen=True)
class StepStatistics:
    """Running state updated once per optimiser step from the whole step's global batch (training only).

    Additive (``per_example`` False): ``collect(batch, **params)`` gives ``size`` sums over this batch's
    examples (a 1-D tensor; the loop adds them over micro-batches and all-reduces them across processes);
    ``update(state, sums, **params)`` folds the step's sums into ``state``.

    Per example (``per_example`` True), for statistics that are not sums (a draw over the batch, a
    standard deviation, per-task means over tasks known only at run time): ``collect(batch, **params)``
    gives one row per example of the view, ``[n, width]`` (``size`` is the width, or None when only the
    data knows it); the loop gathers every micro-batch's and process's rows (uneven sizes) in the order of
    the step's global batch, whatever the cut, and ``update(state, rows, **params)`` receives all ``N`` of
    them. It may return one result per example (a tensor with ``N`` rows, in the same order); each
    micro-batch's loss then receives its own examples' results as its ``step_results`` argument.

    ``collect`` may also take ``state`` (read only); each function receives only the hyper-parameters it
    declares. ``after_step`` False: folded before the step's loss, which then reads the updated state ("this
    batch included"; needs the batch's scores first: with several micro-batches or processes the loop makes
    a no-gradient pass). True: the step's loss reads the state as it was, and the statistics, collected from
    the training pass itself, are folded after the step (no extra pass; results are not used).
    """

    collect: Callable[..., Any]
    update: Callable[..., Any]
    size: int | None = None
    after_step: bool = False
    per_example: bool = False

    def __post_init__(self) -> None:
        if not self.per_example and not (isinstance(self.size, int) and self.size > 0):
            raise ValueError("StepStatistics: additive statistics need size, the number of sums")

    def gather(self, batch: Any, params: dict[str, Any], state: dict[str, Any] | None = None) -> Tensor:
        """This batch's sums (1-D float64) or, per example, its rows ``[n, width]`` (float64)."""
        kwargs = _declared(self.collect, params, skip=1)
        if "state" in inspect.signature(self.collect).parameters:
            kwargs["state"] = state if state is not None else {}
        with torch.no_grad():
            out = torch.as_tensor(self.collect(batch, **kwargs)).detach().to("cpu", torch.float64)
        if not self.per_example:
            return out.reshape(-1)
        rows = out.reshape(out.shape[0], -1) if out.dim() != 1 else out[:, None]
        if rows.shape[0] != batch.size or (self.size is not None and rows.shape[1] != self.size):
            raise ValueError(
                f"step statistics: collect gave rows of shape {tuple(rows.shape)}, expected "
                f"[{batch.size}, {self.size if self.size is not None else 'width'}] (one row per example)"
            )
        return rows

    def fold(self, state: dict[str, Any], values: Tensor, params: dict[str, Any]) -> Tensor | None:
        """Fold a whole step's statistics into ``state``; per example, returns the per-example results."""
        kwargs = _declared(self.update, params, skip=2)
        if not self.per_example:
            self.update(state, [float(x) for x in values], **kwargs)
            return None
        results = self.update(state, values, **kwargs)
        if results is not None and (not isinstance(results, Tensor) or results.shape[0] != values.shape[0]):
            raise ValueError(
                f"step statistics: update must return None or one result per example ({len(values)})"
            )
        return results

    def fold_batch(self, batch: Any, params: dict[str, Any], state: dict[str, Any]) -> Tensor | None:
        """Take ``batch`` as the whole step (the functional API, a call without the loop's totals)."""
        return self.fold(state, self.gather(batch, params, state), params)


def _declared(fn: Callable[..., Any], params: dict[str, Any], skip: int) -> dict[str, Any]:
    names = list(inspect.signature(fn).parameters)[skip:]
    return {k: params[k] for k in names if k in params and k != "state"}
