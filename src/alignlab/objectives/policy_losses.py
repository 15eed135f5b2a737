"""Policy-gradient losses, one registry with ONE signature:
``loss(logps, old_logps, advantages, mask, *, hyper-parameters) -> (per_token_loss, metrics)``.

``logps`` (with gradient) and ``old_logps`` (the sampling policy's, no gradient) are per-token log-probs
of the sampled tokens ``[..., T]``; ``mask`` marks real tokens; ``advantages`` are ``[..., T]`` or one per
completion ``[...]`` (broadcast over its tokens). The per-token loss ``[..., T]`` (zero on padding) is
reduced by a separate aggregation setting (``loss_aggregation``), never chosen by the loss's name.
Sequence-level losses (``sequence_clip``, ``gspo``) put their per-sequence loss on every token of the
sequence, so ``seq_mean_token_mean`` aggregation gives the mean over sequences. ``metrics`` are scalars
over this piece of the batch (for logging only).
"""

from __future__ import annotations

import torch
from torch import Tensor

from alignlab.objectives.rl_registry import Registry

POLICY_LOSSES = Registry("policy loss", signature=("logps", "old_logps", "advantages", "mask"))


def _per_token(advantages: Tensor, logps: Tensor) -> Tensor:
    if advantages.dim() == logps.dim() - 1:
        return advantages[..., None]
    if advantages.shape != logps.shape:
        raise ValueError(
            f"advantages {tuple(advantages.shape)} must match the log-probs {tuple(logps.shape)} "
            "or have one value per completion"
        )
    return advantages


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def _clipped(ratio: Tensor, advantages: Tensor, low: float, high: float) -> tuple[Tensor, Tensor]:
    """max(−A·ρ, −A·clip(ρ, 1 − low, 1 + high)) and whether the clipped branch was taken."""
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - low, 1 + high)
    return torch.maximum(unclipped, clipped), clipped > unclipped


@POLICY_LOSSES.register(
    "ppo_clip", paper="Schulman et al. 2017 (PPO), arXiv 1707.06347; Ye et al. 2020 (dual clip)"
)
def ppo_clip(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    dual_clip: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Token-level PPO clip: l_t = max(−A_t·ρ_t, −A_t·clip(ρ_t, 1 − ε, 1 + ε_high)), ρ_t = π(a_t)/π_old(a_t).

    ``epsilon_high`` (DAPO's clip-higher; default ε). ``dual_clip`` c > 1 (Ye et al. 2020, arXiv
    1912.09729): for A_t < 0 the loss is also capped at −c·A_t. PPO paper eq. 7; GRPO (DeepSeekMath eq. 3)
    uses it per token. Checked: verl ``compute_policy_loss_vanilla`` (clip_ratio_low/high, clip_ratio_c;
    numpy transcription in the test) and TRL 1.16 ``GRPOTrainer._compute_loss`` (``-min(coef_1·A, coef_2·A)``).
    """
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"ppo_clip: dual_clip must be > 1 (verl's clip_ratio_c, e.g. 3.0), got {dual_clip}")
    mask = mask.to(logps.dtype)
    adv = _per_token(advantages, logps)
    ratio = torch.exp(logps - old_logps)
    high = epsilon if epsilon_high is None else epsilon_high
    loss, was_clipped = _clipped(ratio, adv, epsilon, high)
    metrics = {"clip_fraction": _masked_mean(was_clipped.to(logps.dtype), mask)}
    if dual_clip is not None:
        capped = torch.minimum(loss, -adv * dual_clip)
        metrics["dual_clip_fraction"] = _masked_mean(
            ((loss > -adv * dual_clip) & (adv < 0)).to(logps.dtype), mask
        )
        loss = torch.where(adv < 0, capped, loss)
    # k3 estimate of KL(π_old ‖ π) on tokens sampled from π_old: ρ − 1 − log ρ ≥ 0 (Schulman 2020); the k1
    # mean of log π_old − log π that this once logged is unbiased too but comes out negative on noise.
    metrics["approx_kl"] = _masked_mean((ratio - 1 - (logps - old_logps)).detach(), mask)
    return loss * mask, {k: v.detach() for k, v in metrics.items()}


@POLICY_LOSSES.register(
    "sequence_clip", paper="Ahmadian et al. 2024 (RLOO), arXiv 2402.14740; TRL 1.16 RLOOTrainer"
)
def sequence_clip(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Sequence-level clip on the whole-sequence ratio ρ_i = exp(Σ_t log π − Σ_t log π_old):
    l_i = max(−A_i·ρ_i, −A_i·clip(ρ_i, 1 − ε, 1 + ε_high)), put on every token of sequence i.

    With one update per rollout ρ_i = 1 and this is the RLOO paper's REINFORCE −A_i·log π(y_i) in gradient.
    Use ``seq_mean_token_mean`` aggregation for TRL's ``per_sequence_loss.mean()``. Needs one advantage
    per completion. Checked: TRL 1.16 ``RLOOTrainer._compute_loss``; one-step equality is a test.
    """
    mask = mask.to(logps.dtype)
    if advantages.dim() != logps.dim() - 1:
        raise ValueError("sequence_clip takes one advantage per completion ([...], not [..., T])")
    log_ratio = ((logps - old_logps) * mask).sum(-1)
    high = epsilon if epsilon_high is None else epsilon_high
    loss, was_clipped = _clipped(torch.exp(log_ratio), advantages, epsilon, high)
    metrics = {"clip_fraction": was_clipped.to(logps.dtype).mean().detach()}
    return loss[..., None] * mask, metrics


@POLICY_LOSSES.register("gspo", paper="Zheng et al. 2025 (GSPO), arXiv 2507.18071")
def gspo(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon: float = 3e-4,
    epsilon_high: float | None = 4e-4,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Group Sequence Policy Optimization: the length-normalised sequence ratio
    s_i = exp((1/|y_i|)·Σ_t (log π − log π_old)), l_i = max(−A_i·s_i, −A_i·clip(s_i, 1 − ε, 1 + ε_high)),
    put on every token of sequence i (aggregate with ``seq_mean_token_mean``, the paper's objective).

    Defaults ε = 3e-4, ε_high = 4e-4 are the paper's. Paper eq. 5–7. Checked: TRL 1.16
    ``importance_sampling_level="sequence"`` (mean log-ratio, (B, 1) loss) and verl
    ``compute_policy_loss_gspo`` (the same value; its per-token stop-gradient form has the same gradient).
    """
    mask = mask.to(logps.dtype)
    if advantages.dim() != logps.dim() - 1:
        raise ValueError("gspo takes one advantage per completion ([...], not [..., T])")
    log_ratio = ((logps - old_logps) * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    high = epsilon if epsilon_high is None else epsilon_high
    loss, was_clipped = _clipped(torch.exp(log_ratio), advantages, epsilon, high)
    metrics = {"clip_fraction": was_clipped.to(logps.dtype).mean().detach()}
    return loss[..., None] * mask, metrics


@POLICY_LOSSES.register("reinforce", paper="Williams 1992; Ahmadian et al. 2024; Li et al. 2023 (ReMax)")
def reinforce(
    logps: Tensor, old_logps: Tensor, advantages: Tensor, mask: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Plain REINFORCE: l_t = −A_t·log π(a_t) (no ratio, no clip; ``old_logps`` unused).

    Summed over a sequence with one advantage this is −A_i·log π(y_i|x), the RLOO and ReMax papers' loss;
    its gradient equals the clipped losses' at ρ = 1. Checked against the RLOO paper §3 and ReMax Alg. 1.
    """
    mask = mask.to(logps.dtype)
    return -_per_token(advantages, logps) * logps * mask, {}


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float | None = 0.2
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped value loss per token: ½·max((V − G)², (clip(V, V_old − ε_v, V_old + ε_v) − G)²);
    ``clip=None`` gives ½(V − G)². Aggregate with the same setting as the policy loss.

    Checked: verl ``compute_value_loss`` (0.5·agg(max(...)), ``cliprange_value``) and TRL's experimental PPO
    trainer (``vf_losses1/2``). Paper: Ouyang et al. 2022 / "Secrets of RLHF" (PPO-max) §5.
    """
    mask = mask.to(values.dtype)
    unclipped = (values - returns) ** 2
    if clip is None:
        return 0.5 * unclipped * mask, {}
    clipped_values = torch.clamp(values, old_values - clip, old_values + clip)
    clipped = (clipped_values - returns) ** 2
    metrics = {"value_clip_fraction": _masked_mean((clipped > unclipped).to(values.dtype), mask).detach()}
    return 0.5 * torch.maximum(unclipped, clipped) * mask, metrics
