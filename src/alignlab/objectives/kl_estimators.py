"""Per-token KL estimators, one registry with ONE signature: ``estimator(logps, ref_logps, old_logps)``.

All three tensors are per-token log-probs of the SAMPLED tokens (shape ``[..., T]``): ``logps`` under the
policy being scored (with gradient when the KL goes in the loss; the sampling policy's, no gradient, when
it goes in the reward), ``ref_logps`` under the reference, ``old_logps`` under the policy that sampled the
tokens (used only by ``k3_ratio``; pass ``None`` otherwise). With ℓ = log π_ref(a_t) − log π(a_t) and
tokens a_t ~ π (Schulman, "Approximating KL divergence", 2020, http://joschu.net/blog/kl-approx.html):

- ``k1`` = −ℓ: unbiased for KL(π‖π_ref); as a reward penalty its score-function gradient is exact.
- ``k2`` = ½ℓ²: biased, low variance; its pathwise gradient E[∇k2] is the exact ∇KL(π‖π_ref).
- ``k3`` = e^ℓ − ℓ − 1 ≥ 0: unbiased for KL(π‖π_ref), low variance. Placed in the LOSS with samples from
  π_old = sg(π) (DeepSeekMath's GRPO) its gradient is E[(1 − π_ref/π)∇log π] = ∇KL(π_ref‖π): the FORWARD
  KL, so training converges to β·π_ref/(β + r̄ − r), not to π_ref·e^{r/β}/Z (METHODS disagreement 7).
- ``k3_ratio`` = (π/π_old)·k3: the importance-corrected form (TRL 1.16 ``use_bias_correction_kl=True``);
  its gradient is the exact ∇KL(π‖π_ref), so the loss form converges to π_ref·e^{r/β}/Z. The bandit test
  in tests/objectives/test_rl_bandit.py tells the two apart.

No clamping (verl clamps ℓ to ±20 and k3 to ±10; TRL does not): equality with TRL is a test.
"""

from __future__ import annotations

import torch
from torch import Tensor

from alignlab.objectives.advantages import place_at_last_token
from alignlab.objectives.rl_registry import Registry

KL_ESTIMATORS = Registry("KL estimator", signature=("logps", "ref_logps", "old_logps"))


@KL_ESTIMATORS.register("k1", paper="Schulman 2020, 'Approximating KL divergence'")
def k1(logps: Tensor, ref_logps: Tensor, old_logps: Tensor | None) -> Tensor:
    """k1 = log π(a_t) − log π_ref(a_t). PPO-RLHF's per-token reward penalty (Ziegler et al. 2019; TRL's
    experimental PPO ``kl_estimator="k1"``, TRL 1.16 RLOO's sequence penalty, verl ``kl_penalty="kl"``)."""
    return logps - ref_logps


@KL_ESTIMATORS.register("k2", paper="Schulman 2020, 'Approximating KL divergence'")
def k2(logps: Tensor, ref_logps: Tensor, old_logps: Tensor | None) -> Tensor:
    """k2 = ½·(log π(a_t) − log π_ref(a_t))². Checked: verl ``kl_penalty("k2"/"mse")``, OpenRLHF
    ``compute_approx_kl("k2")``."""
    return 0.5 * (logps - ref_logps) ** 2


@KL_ESTIMATORS.register("k3", paper="Schulman 2020; Shao et al. 2024 (DeepSeekMath) eq. 4")
def k3(logps: Tensor, ref_logps: Tensor, old_logps: Tensor | None) -> Tensor:
    """k3 = π_ref/π − log(π_ref/π) − 1 = e^ℓ − ℓ − 1, ℓ = log π_ref(a_t) − log π(a_t). DeepSeekMath's
    GRPO KL term (in the loss, biased gradient: see the module docstring). Checked: TRL 1.16
    ``GRPOTrainer._compute_loss`` (``per_token_kl``), verl ``kl_penalty("low_var_kl"/"k3")`` (clamps)."""
    log_ratio = ref_logps - logps
    return torch.exp(log_ratio) - log_ratio - 1


@KL_ESTIMATORS.register("k3_ratio", paper="TRL 1.16 use_bias_correction_kl; Schulman 2020")
def k3_ratio(logps: Tensor, ref_logps: Tensor, old_logps: Tensor | None) -> Tensor:
    """k3 × π(a_t)/π_old(a_t): k3 importance-weighted to the sampling policy, so its gradient in the loss
    is the exact ∇KL(π‖π_ref). Checked: TRL 1.16 ``GRPOTrainer._compute_loss`` (``per_token_kl * coef_1``
    under ``use_bias_correction_kl``, coef_1 = exp(logps − old_logps), not detached)."""
    if old_logps is None:
        raise ValueError("the k3_ratio KL estimator needs the sampling policy's log-probs (old_logps)")
    return k3(logps, ref_logps, None) * torch.exp(logps - old_logps)


def kl_penalised_rewards(
    rewards: Tensor, kl: Tensor, mask: Tensor, beta: float, per_token: bool = True
) -> Tensor:
    """KL in the REWARD. ``per_token`` (PPO, REINFORCE++): token rewards r_t = R·1[t = last] − β·k_t,
    shape ``[..., T]`` (Ziegler et al. 2019; verl ``compute_rewards``; TRL PPO). Otherwise (RLOO):
    R − β·Σ_t k_t, shape ``[...]`` (TRL 1.16 ``RLOOTrainer``). ``rewards``: outcome ``[...]``; ``kl``: a
    per-token estimate ``[..., T]`` computed WITHOUT gradient (old and reference log-probs)."""
    mask = mask.to(kl.dtype)
    if not per_token:
        return rewards - beta * (kl * mask).sum(-1)
    if rewards.dim() == kl.dim():
        return rewards * mask - beta * kl * mask
    flat = place_at_last_token(rewards.reshape(1, -1), mask.reshape(1, -1, mask.shape[-1]))
    return flat.reshape(mask.shape) - beta * kl * mask
