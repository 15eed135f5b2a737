"""TRPA: Trust Region Preference Approximation (Su et al. 2025, arXiv 2504.04524) — preference pairs built
across rule-based levels of on-policy samples, a DPO-style loss on them, and a KL trust region to π_old.

Levels come from rules, lower is better (the official math reward: 1 correct, 2 wrong answer, 3 no parsable
answer, 4 format error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def trpa_pairs(levels: Tensor, group_index: Tensor) -> tuple[Tensor, Tensor]:
    """(winner, loser) indices of every pair of samples of the same prompt whose levels differ; the lower
    level wins. Samples of equal level are never paired.
    Checked: XueruiSu/Trust-Region-Preference-Approximation verl/trainer/ppo/core_algos.py
    ``compute_pairwise_policy_loss`` (unique levels per uid, every (i in level a, j in level b), a < b)."""
    win, lose = [], []
    lv, grp = levels.tolist(), group_index.tolist()
    for i in range(len(lv)):
        for j in range(len(lv)):
            if grp[i] == grp[j] and lv[i] < lv[j]:
                win.append(i)
                lose.append(j)
    return torch.tensor(win, dtype=torch.long), torch.tensor(lose, dtype=torch.long)


def trpa_loss(
    mean_logps: Tensor,
    ref_mean_logps: Tensor,
    levels: Tensor,
    group_index: Tensor,
    beta: float = 0.1,
    anisotropy: float = 2.5,
    top_level: int = 1,
) -> Tensor:
    """L = mean over pairs (w, l) of −log σ(a_w·β·(ℓ_w − ℓ_l)), ℓ = mean-token log π_θ − mean-token log π_ref.

    a_w = ``anisotropy`` when the winner is at ``top_level`` (a correct answer), else 1. With no pair in the
    batch (every sample of every prompt at one level) the official fallback is used:
    mean_i −log σ(±ℓ_i), + for samples at the top level and − otherwise. β = 0.1, a = 2.5 are the official
    script's. The trust-region term is :func:`trust_region_kl`.
    Checked: XueruiSu/Trust-Region-Preference-Approximation core_algos.py ``compute_pairwise_policy_loss``
    (masked-mean log-probs, h = anisotropy·β·Δ when level_i == 1) and main_TRPA.sh (trpa_beta 0.1,
    trpa_anisotropy 2.5).
    """
    log_ratio = mean_logps - ref_mean_logps
    win, lose = trpa_pairs(levels, group_index)
    if win.numel() == 0:
        sign = torch.where(levels == top_level, 1.0, -1.0).to(log_ratio.dtype)
        return -F.logsigmoid(sign * log_ratio).mean()
    return _pair_loss(log_ratio, win, lose, levels[win] == top_level, beta, anisotropy)


def trpa_loss_from_rewards(
    mean_logps: Tensor,
    ref_mean_logps: Tensor,
    rewards: Tensor,
    group_index: Tensor,
    beta: float = 0.1,
    anisotropy: float = 2.5,
    top_reward: float = 1.0,
) -> Tensor | None:
    """:func:`trpa_loss` with the levels given by a rule-based reward (a higher reward is a better level)
    and the anisotropy on pairs whose winner's reward ≥ ``top_reward``; None when there is no pair."""
    win, lose = trpa_pairs(-rewards, group_index)
    if win.numel() == 0:
        return None
    return _pair_loss(mean_logps - ref_mean_logps, win, lose, rewards[win] >= top_reward, beta, anisotropy)


def _pair_loss(
    log_ratio: Tensor, win: Tensor, lose: Tensor, top_winner: Tensor, beta: float, anisotropy: float
) -> Tensor:
    scale = torch.where(top_winner, anisotropy, 1.0).to(log_ratio.dtype)
    return -F.logsigmoid(scale * beta * (log_ratio[win] - log_ratio[lose])).mean()


def trust_region_kl(
    token_logps: Tensor, old_token_logps: Tensor, token_mask: Tensor, coef: float = 1e-3, sqrt: bool = False
) -> Tensor:
    """coef·KL̂ (or coef·sqrt(KL̂ + ¼) with ``sqrt``), KL̂ = masked token mean of k3 = e^ℓ − ℓ − 1,
    ℓ = log π_old − log π_θ: TRPA's trust region to the sampling policy (official tr_kl_loss_coef 1e-3,
    kl_loss_type low_var_kl; checked in its dp_actor.py)."""
    mask = token_mask.to(token_logps.dtype)
    ell = old_token_logps.detach() - token_logps
    kl = ((torch.exp(ell) - ell - 1) * mask).sum() / mask.sum().clamp(min=1)
    return coef * (torch.sqrt(kl + 0.25) if sqrt else kl)
