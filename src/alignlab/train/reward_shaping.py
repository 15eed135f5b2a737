"""Reward shaping between the judge and the advantage estimator: missing-EOS penalty, normalisation and
clipping of the outcome rewards (the KL penalty then enters the token rewards through
``objectives.kl_estimators.kl_penalised_rewards``).

    shaped = shape_rewards(rewards, finished, settings, running)       # [N] outcome rewards
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from alignlab.train.online_settings import RewardShaping


@dataclass
class RunningMoments:
    """Running mean and variance of every reward seen (Chan et al.'s parallel update), for
    ``normalize: running`` (Secrets of RLHF's PPO-max reward normalisation)."""

    count: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: Tensor) -> None:
        n = float(values.numel())
        if n == 0:
            return
        batch_mean = float(values.double().mean())
        batch_m2 = float(((values.double() - batch_mean) ** 2).sum())
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 1.0

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count, self.mean, self.m2 = float(state["count"]), float(state["mean"]), float(state["m2"])


def shape_rewards(
    rewards: Tensor, finished: Tensor, settings: RewardShaping, running: RunningMoments
) -> Tensor:
    """The judge's rewards [N] after the missing-EOS penalty, normalisation and clipping (in that order)."""
    out = rewards.double().clone()
    if settings.missing_eos_penalty is not None:
        out = out - settings.missing_eos_penalty * (~finished).double()
    if settings.normalize == "batch":
        std = float(out.std()) if out.numel() > 1 else 1.0
        out = (out - out.mean()) / (std if std > 0 else 1.0)
    elif settings.normalize == "running":
        running.update(out)
        out = (out - running.mean) / (running.std if running.std > 0 else 1.0)
    if settings.clip is not None:
        out = out.clamp(-settings.clip, settings.clip)
    return out.to(rewards.dtype)
