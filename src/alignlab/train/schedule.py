"""The learning-rate schedules of ``train.schedule``, as ``torch.optim.lr_scheduler.LambdaLR``.

The same multipliers as transformers' ``get_scheduler`` (``transformers/optimization.py``, read for this
file), built without importing transformers' trainer utilities: ``transformers.get_scheduler`` pulls in
``transformers.trainer_utils`` and through it ``peft`` (about 230 modules, tens of MB resident in every
training process). Step ``s`` of ``T`` total with ``W`` warm-up steps multiplies the configured rate by:

- ``constant``: 1 (warm-up ignored, as transformers' ``constant``);
- ``constant_with_warmup``: ``s / max(1, W)`` while ``s < W``, then 1 (transformers'
  ``get_constant_schedule_with_warmup``);
- ``linear``: ``s / max(1, W)`` while ``s < W``, then ``max(0, (T - s) / max(1, T - W))``;
- ``cosine``: ``s / max(1, W)`` while ``s < W``, then ``max(0, ½(1 + cos(π · p)))`` with
  ``p = (s - W) / max(1, T - W)`` (half a cosine cycle, transformers' ``num_cycles = 0.5``).

tests/train/test_schedule.py compares every step's rate with transformers' ``get_scheduler``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


def _warmup(step: int, warmup_steps: int) -> float:
    return float(step) / float(max(1, warmup_steps))


def schedule_multiplier(name: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The function step -> learning-rate multiplier of schedule ``name`` (see the module docstring)."""
    if name == "constant":
        return lambda step: 1.0
    if name == "constant_with_warmup":

        def constant_with_warmup(step: int) -> float:
            return _warmup(step, warmup_steps) if step < warmup_steps else 1.0

        return constant_with_warmup
    if name == "linear":

        def linear(step: int) -> float:
            if step < warmup_steps:
                return _warmup(step, warmup_steps)
            return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))

        return linear
    if name == "cosine":

        def cosine(step: int) -> float:
            if step < warmup_steps:
                return _warmup(step, warmup_steps)
            progress = float(step - warmup_steps) / float(max(1, total_steps - warmup_steps))
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

        return cosine
    raise ValueError(f"train.schedule: unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)}")


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` over ``optimizer`` following schedule ``name`` for ``total_steps`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_multiplier(name, warmup_steps, total_steps))
