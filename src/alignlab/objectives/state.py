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


class ObjectiveState(dict):
    """An objective's running state; ``training`` is False during evaluation (then it is a throw-away copy)."""

    training: bool = True

    def copy_for_eval(self) -> ObjectiveState:
        import copy

        out = ObjectiveState(copy.deepcopy(dict(self)))
        out.training = False
        return out


@dataclass(frozen=True)
class StepStatistics:
    """Running state updated once per optimiser step from the whole step's global batch (training only).

    ``collect(batch, **params)``: ``size`` sums over this batch's examples (a 1-D tensor; additive, so the
    loop adds them over micro-batches and all-reduces them across processes); ``update(state, sums,
    **params)``: folds the step's sums into ``state``. Each receives only the hyper-parameters it declares.
    """

    collect: Callable[..., Any]
    update: Callable[..., None]
    size: int

    def gather(self, batch: Any, params: dict[str, Any]) -> Any:
        return self.collect(batch, **_declared(self.collect, params, skip=1))

    def fold(self, state: dict[str, Any], sums: Any, params: dict[str, Any]) -> None:
        self.update(state, [float(x) for x in sums], **_declared(self.update, params, skip=2))


def _declared(fn: Callable[..., Any], params: dict[str, Any], skip: int) -> dict[str, Any]:
    names = list(inspect.signature(fn).parameters)[skip:]
    return {k: params[k] for k in names if k in params}
