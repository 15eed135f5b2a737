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
    loop adds them over micro-batches and all-reduces them across processes); it may also take ``state``
    (read only). ``update(state, sums, **params)``: folds the step's sums into ``state``. Each receives only
    the hyper-parameters it declares. ``after_step`` False: folded before the step's loss, which then
    reads the updated state ("this batch included"; needs the batch's scores first: with several
    micro-batches or processes the loop makes a no-gradient pass). True: the step's loss reads the state as
    it was, and the sums, collected from the training pass itself, are folded after the step (no extra pass).
    """

    collect: Callable[..., Any]
    update: Callable[..., None]
    size: int
    after_step: bool = False

    def gather(self, batch: Any, params: dict[str, Any], state: dict[str, Any] | None = None) -> Any:
        kwargs = _declared(self.collect, params, skip=1)
        if "state" in inspect.signature(self.collect).parameters:
            kwargs["state"] = state if state is not None else {}
        return self.collect(batch, **kwargs)

    def fold(self, state: dict[str, Any], sums: Any, params: dict[str, Any]) -> None:
        self.update(state, [float(x) for x in sums], **_declared(self.update, params, skip=2))


def _declared(fn: Callable[..., Any], params: dict[str, Any], skip: int) -> dict[str, Any]:
    names = list(inspect.signature(fn).parameters)[skip:]
    return {k: params[k] for k in names if k in params and k != "state"}
