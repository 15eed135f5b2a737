"""KL coefficient controllers: the β that multiplies the KL penalty, fixed or adapted to a target KL.

    control = AdaptiveKLController(beta=0.05, target=6.0, horizon=10000)
    control.update(observed_kl, n_steps=batch_size)   # after each rollout; read control.value

Both keep their state in ``state_dict()`` so a resumed run continues with the same β.
"""

from __future__ import annotations

from typing import Any


class FixedKLController:
    """β stays at its initial value (TRL's and verl's default, ``kl_ctrl.type = fixed``)."""

    def __init__(self, beta: float):
        self.value = float(beta)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController(FixedKLController):
    """Ziegler et al. 2019 (arXiv 1909.08593, §2.2): e = clip(KL_obs / KL_target − 1, −0.2, 0.2),
    β ← β·(1 + e·n_steps / horizon): β grows while the policy drifts past the target KL and shrinks below it.

    Checked: verl ``core_algos.AdaptiveKLController`` (same clip ±0.2 and update) and TRL's former
    ``AdaptiveKLController`` (trl ≤ 0.11 ``ppo_trainer``)."""

    def __init__(self, beta: float, target: float, horizon: float):
        super().__init__(beta)
        if target <= 0 or horizon <= 0:
            raise ValueError(f"adaptive KL control needs target > 0 and horizon > 0, got {target}, {horizon}")
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


def kl_controller(beta: float, target: float | None = None, horizon: float = 10000.0) -> FixedKLController:
    """The adaptive controller when a ``target`` KL is given, else the fixed one."""
    return FixedKLController(beta) if target is None else AdaptiveKLController(beta, target, horizon)
