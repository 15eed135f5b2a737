"""Fine-Grained RLHF's dense token rewards (Wu et al. 2023, arXiv 2306.01693), ready for PPO's GAE.

Each reward model k scores every segment j (sentence or sub-sentence) of a response; the weighted sum
lands on the segment's last token, and the per-token KL penalty is subtracted everywhere:

    r_t = Σ_k w_k · Σ_j 1[t = end(j)] · R_k(x, y, j) − β·(log π_old(y_t) − log π_ref(y_t))

With one reward model and one segment covering the whole response this is PPO's token reward
r_t = −β·k1_t + 1[t = T]·R exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def segment_token_rewards(
    segment_ends: Tensor, segment_rewards: Tensor, weights: Sequence[float] | Tensor, num_tokens: int
) -> Tensor:
    """``[B, T]`` rewards: Σ_k w_k·R_k(j) placed on token ``segment_ends[b, j]``.

    ``segment_ends`` ``[B, J]`` holds each segment's last completion-token index (−1 pads missing
    segments); ``segment_rewards`` ``[B, J, K]`` (or ``[B, J]`` for one reward model) the per-model
    segment rewards; ``weights`` the K user weights w_k.
    Checked: allenai/FineGrainedRLHF tasks/qa_feedback/training/reward.py (``kl_penalize_reward``: the
    per-token reward lists padded to the response length, minus kl_coef·mask(log π_old − log π_ref)) and
    fgrlhf/ppo.py (GAE over those dense rewards, then the usual clipped PPO losses).
    """
    values = segment_rewards if segment_rewards.dim() == 3 else segment_rewards.unsqueeze(-1)
    w = torch.as_tensor(weights, dtype=values.dtype, device=values.device)
    if values.shape[-1] != w.shape[0]:
        raise ValueError(f"fine_grained_rlhf: {values.shape[-1]} reward models but {w.shape[0]} weights")
    if tuple(values.shape[:2]) != tuple(segment_ends.shape):
        raise ValueError(
            f"fine_grained_rlhf: segment_ends {tuple(segment_ends.shape)} and segment_rewards "
            f"{tuple(values.shape[:2])} disagree"
        )
    if (segment_ends >= num_tokens).any():
        raise ValueError(f"fine_grained_rlhf: a segment ends past the {num_tokens} completion tokens")
    combined = (values * w).sum(-1)
    valid = segment_ends >= 0
    out = torch.zeros(segment_ends.shape[0], num_tokens, dtype=values.dtype, device=values.device)
    return out.scatter_add(
        1, segment_ends.clamp(min=0), torch.where(valid, combined, torch.zeros_like(combined))
    )


def fine_grained_token_rewards(
    segment_ends: Tensor,
    segment_rewards: Tensor,
    weights: Sequence[float] | Tensor,
    old_token_logps: Tensor,
    ref_token_logps: Tensor,
    token_mask: Tensor,
    beta: float = 0.05,
) -> Tensor:
    """r_t = segment rewards at segment ends − β·(log π_old − log π_ref), 0 on padding; ``[B, T]``."""
    dense = segment_token_rewards(segment_ends, segment_rewards, weights, old_token_logps.shape[-1])
    kl = old_token_logps - ref_token_logps
    return (dense - beta * kl) * token_mask.to(dense.dtype)
