"""NLPO's action mask (Ramamurthy et al. 2022, RL4LMs, arXiv 2210.01241): PPO whose next-token
distribution is restricted to the top-p nucleus of a *masking policy* π_ψ, a copy of π_θ refreshed every
μ iterations.

The masked policy is π_θ renormalised over the nucleus: log π^m_θ(a|s) = z_a − log Σ_{b∈M(s)} e^{z_b} for
a ∈ M(s) (and −∞ outside), where M(s) is the top-p set of π_ψ(·|s). Sampling and the PPO ratio both use
π^m_θ, so PPO's algebra is unchanged; only the support shrinks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def nucleus_action_mask(
    mask_logits: Tensor,
    top_p: float = 0.9,
    min_tokens_to_keep: int = 1,
    always_keep_ids: Sequence[int] = (),
) -> Tensor:
    """Bool ``[..., V]``: the tokens NLPO allows at each position.

    Sort π_ψ's probabilities in decreasing order with cumulative sums c_1 ≤ c_2 ≤ …; the token at sorted
    position i (from 0) is kept iff i < ``min_tokens_to_keep`` or c_i − p_i ≤ top_p (the mass *before* it
    is within top_p, so the token that crosses the threshold is kept). ``always_keep_ids`` (the tokenizer's
    special ids, EOS among them) are always allowed. ``top_p >= 1`` keeps every token, so NLPO is then
    exactly PPO (no float round-off in the cumulative sum can drop a tail token).
    Checked: allenai/RL4LMs rl4lms/algorithms/common/maskable/logits_processor.py (mask_type
    'learned_top_p': cumulative_probs > top_mask, shifted right by one, first kept, min_tokens_to_keep,
    special ids scattered to 1); README config top_mask 0.9, target_update_iterations 20.
    """
    if not 0.0 < top_p:
        raise ValueError(f"nlpo: top_p must be in (0, 1], got {top_p}")
    if top_p >= 1.0:
        return torch.ones_like(mask_logits, dtype=torch.bool)
    sorted_logits, order = torch.sort(mask_logits, dim=-1, descending=True)
    probs = sorted_logits.float().softmax(-1)
    mass_before = probs.cumsum(-1) - probs
    keep_sorted = mass_before <= top_p
    keep_sorted[..., : max(min_tokens_to_keep, 1)] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    if len(always_keep_ids):
        keep[..., list(always_keep_ids)] = True
    return keep


def masked_log_probs(logits: Tensor, allowed: Tensor) -> Tensor:
    """log π^m(·) = log_softmax of ``logits`` over the ``allowed`` tokens (−∞ elsewhere), ``[..., V]``."""
    return logits.masked_fill(~allowed, float("-inf")).log_softmax(-1)


def masked_token_logps(logits: Tensor, actions: Tensor, allowed: Tensor) -> Tensor:
    """log π^m(a_t | s_t) of the taken ``actions`` ``[...]`` under the mask; −∞ if an action was not allowed."""
    return masked_log_probs(logits, allowed).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def masked_entropy(logits: Tensor, allowed: Tensor) -> Tensor:
    """Entropy of the masked distribution at each position ``[...]``."""
    logp = masked_log_probs(logits, allowed)
    p = logp.exp()
    return -(p * logp.masked_fill(~allowed, 0.0)).sum(-1)


def mask_policy_due(rollouts_done: int, update_every: int) -> bool:
    """True when the masking policy π_ψ is to be refreshed from π_θ: π_ψ starts as a copy of the initial
    policy and is re-copied after every μ-th rollout (``rollouts_done`` counts rollouts from 1), before
    that rollout's update. Checked: allenai/RL4LMs nlpo.py ``learn`` (iteration += 1 after
    collect_rollouts; ``if iteration % target_update_iterations == 0: update_mask_model()``; then train)."""
    if update_every < 1:
        raise ValueError(f"nlpo: update_every must be >= 1, got {update_every}")
    return rollouts_done % update_every == 0
