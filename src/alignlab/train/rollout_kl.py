"""The reference in online training: the KL penalty that goes into the token rewards (with the KL
controller's update) and the reference that follows the policy (``online.reference_update``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from alignlab.objectives.kl_estimators import KL_ESTIMATORS, kl_penalised_rewards


def kl_in_reward(
    rewards: Tensor, scored: dict[str, Tensor], mask: Tensor, kl_control: Any, estimator: str
) -> tuple[Tensor, dict[str, float]]:
    """Outcome rewards [G, K] → token rewards [G, K, T] (KL penalty per token when its coefficient > 0).

    The penalty is β·KL per token with the ``estimator`` of KL(π_old ‖ π_ref); the controller is updated with
    the mean sequence k1 KL. Without the old or reference log-probs (``on_policy_update``) the rewards pass
    unchanged."""
    beta = kl_control.value
    if "ref_logps" not in scored or "old_logps" not in scored:  # no KL in the reward (on_policy_update)
        return rewards, {}
    old, ref = (scored[name].reshape(mask.shape) for name in ("old_logps", "ref_logps"))
    kl = KL_ESTIMATORS(estimator, old, ref, None) * mask
    sequence_kl = float((KL_ESTIMATORS("k1", old, ref, None) * mask).sum(-1).mean())
    metrics = {"kl/sequence": sequence_kl, "kl/coef": beta}
    kl_control.update(sequence_kl, int(mask.shape[0] * mask.shape[1]))
    if beta == 0:
        return rewards, metrics
    return kl_penalised_rewards(rewards, kl, mask, beta), metrics


def move_reference(reference: Any, policy: Callable[[], Any], update: Any, refreshes: int) -> None:
    """``reference_update``: EMA or copy of the policy into the reference, before a refresh."""
    if update.mode == "frozen" or reference is None or refreshes == 0:
        return
    if update.mode == "previous_iteration" and refreshes % update.every:
        return
    alpha = update.alpha if update.mode == "ema" else 1.0
    source = dict(policy().named_parameters())
    for name, param in reference.named_parameters():
        param.mul_(1 - alpha).add_(source[name].detach().to(param.dtype), alpha=alpha)
