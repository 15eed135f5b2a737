"""DRPO: Decoupled Reward Policy Optimization (Li et al. 2025, "DRPO: Efficient Reasoning via Decoupled
Reward Policy Optimization", arXiv 2510.04474) — the discriminative loss with length-weighted positives.

Correct rollouts (reward 1) and incorrect ones (reward 0) of a prompt are separated: the length signal only
re-weights the correct ones among themselves, through the closed-form optimal positive distribution
q*(y) ∝ π_old(y)·exp(r_len(y)/λ), so a long correct answer is never pushed down because short wrong ones
exist (GRPO with a length-penalised reward can give it a negative advantage).
"""

from __future__ import annotations

import torch
from torch import Tensor


def drpo_loss(
    token_logps: Tensor,
    old_token_logps: Tensor,
    token_mask: Tensor,
    group_index: Tensor,
    correct: Tensor,
    max_length: int,
    tau: float = 10.0,
    lam: float = 0.1,
    beta: float = 1e3,
    delta: float = 1e-4,
) -> tuple[Tensor, dict[str, Tensor]]:
    """DRPO loss (a scalar) for N rollouts ``[N, T]`` of several prompts (``group_index`` ``[N]``).

    s_i = (1/|y_i|) Σ_t log π_θ(y_i,t) (length-normalised log-likelihood), w_i = exp((1 − |y_i|/L)/λ) with
    L = ``max_length`` (the rollout's max_new_tokens). For each prompt with at least one correct (P) and one
    incorrect (N) rollout:
        J_g = Σ_{i∈P} w_i·s_i / Σ_{i∈P} w_i − τ·log Σ_{j∈N} exp(s_j/τ)
    and the loss is L = −(1/G)·Σ_g J_g + sg(max(β·(KL − δ), 0))·KL, G the number of prompts (those
    without both kinds count in G but add nothing), KL = masked token mean of the k3 estimate
    exp(ℓ) − ℓ − 1, ℓ = log π_θ − log π_old (the trust-region penalty; note the
    direction: ratio − log ratio − 1 with ratio = π_θ/π_old, as the official ``low_var_kl`` branch here). So ∂L/∂s_i = −w_i/(G·Σ_P w) ≤ 0
    for every correct rollout whatever λ, and ∂L/∂s_j = softmax_N(s/τ)_j / G for an incorrect one.
    Defaults τ = 10, λ = 0.1, β = 1e3, δ = 1e-4 are the official scripts'.
    Checked: Optimization-AI/DRPO verl/verl/trainer/ppo/core_algos.py ``compute_policy_loss_drpo`` and
    scripts/train/run_drpo_1.5b_8k.sh. The official value of the negative term is
    Σexp/sg(Σexp) (= 1, same gradient as the log-sum-exp); here the log-sum-exp itself is returned, so the
    loss *value* differs from theirs by a constant per prompt while the gradient is the same.
    """
    total, valid, groups = drpo_group_objective(
        token_logps, token_mask, group_index, correct, max_length, tau=tau, lam=lam
    )
    penalty, kl = drpo_trust_region(token_logps, old_token_logps, token_mask, beta=beta, delta=delta)
    metrics = {"drpo_kl": kl.detach(), "drpo_valid_groups": torch.tensor(float(valid))}
    return -total / groups + penalty, metrics


def drpo_group_objective(
    token_logps: Tensor,
    token_mask: Tensor,
    group_index: Tensor,
    correct: Tensor,
    max_length: int,
    tau: float = 10.0,
    lam: float = 0.1,
) -> tuple[Tensor, int, int]:
    """(Σ_g J_g over the prompts with both kinds, how many have both, how many prompts there are)."""
    mask = token_mask.to(token_logps.dtype)
    lengths = mask.sum(-1).clamp(min=1)
    scores = (token_logps * mask).sum(-1) / lengths
    weight = torch.exp((1 - lengths / max_length) / lam).detach()
    groups = torch.unique(group_index)
    positive, negative = correct > 0.5, correct <= 0.5
    total = token_logps.new_zeros(())
    valid = 0
    for g in groups:
        members = group_index == g
        pos, neg = members & positive, members & negative
        if not pos.any() or not neg.any():
            continue
        valid += 1
        w = weight[pos]
        total = total + (w * scores[pos]).sum() / w.sum() - tau * torch.logsumexp(scores[neg] / tau, dim=0)
    return total, valid, len(groups)


def drpo_kl_sums(token_logps: Tensor, old_token_logps: Tensor, token_mask: Tensor) -> tuple[Tensor, Tensor]:
    """(Σ of ratio − log ratio − 1 over the real tokens, their count), ratio = π_θ/π_old."""
    mask = token_mask.to(token_logps.dtype)
    log_ratio = token_logps - old_token_logps.detach()
    return ((torch.exp(log_ratio) - log_ratio - 1) * mask).sum(), mask.sum()


def drpo_trust_region(
    token_logps: Tensor,
    old_token_logps: Tensor,
    token_mask: Tensor,
    beta: float = 1e3,
    delta: float = 1e-4,
    coefficient_kl: float | None = None,
) -> tuple[Tensor, Tensor]:
    """(sg(max(β·(KL̄ − δ), 0))·KL, KL) with KL the masked token mean of ratio − log ratio − 1,
    ratio = π_θ/π_old (the official ``low_var_kl`` branch); KL̄ = ``coefficient_kl`` (the whole step's KL)
    or, when None, this batch's KL (the official code's per-micro-batch coefficient)."""
    total, tokens = drpo_kl_sums(token_logps, old_token_logps, token_mask)
    kl = total / tokens.clamp(min=1)
    reference = kl.detach() if coefficient_kl is None else torch.as_tensor(coefficient_kl, dtype=kl.dtype)
    return torch.clamp(beta * (reference - delta), min=0).detach() * kl, kl
