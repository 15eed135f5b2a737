"""Noise-robust objectives (METHODS.md section G): ADPO (anchored soft/listwise DPO) and LCPO (EM label weights).

``cdpo`` and ``rdpo`` live with the pairwise losses.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.listwise import list_metrics
from alignlab.objectives.metrics import pair_reward_metrics
from alignlab.objectives.registry import objective
from alignlab.objectives.state import StepStatistics
from alignlab.objectives.views import ListBatch, PairBatch

NEG_INF = float("-inf")


def adpo_target(batch: ListBatch, target: str, label_smoothing: float, label_temperature: float) -> Tensor:
    """The target distribution q over each list's real items.

    ``hard``: one-hot on the best rank (tied best items share the mass), then smoothed: q = (1-ε)·q +
    ε·(uniform over the other real items). ``soft``: softmax(rating / label_temperature) over the first
    named rating (a soft preference, e.g. a teacher's scores).
    """
    mask = batch.mask
    dtype = batch.items.logps.dtype
    if target == "hard":
        ranks = torch.where(mask, batch.ranks, torch.full_like(batch.ranks, math.inf))
        best = (ranks == ranks.min(dim=1, keepdim=True).values) & mask
        q = best.to(dtype) / best.sum(dim=1, keepdim=True).clamp(min=1)
        if label_smoothing > 0:
            others = (mask & ~best).to(dtype)
            n_others = others.sum(dim=1, keepdim=True)
            spread = others / n_others.clamp(min=1)
            q = torch.where(n_others > 0, (1 - label_smoothing) * q + label_smoothing * spread, q)
        return q
    if target == "soft":
        ratings = batch.items.ratings
        if ratings is None or ratings.dim() != 3 or ratings.shape[-1] == 0:
            raise ValueError(
                "adpo: target 'soft' needs ratings per completion (Record.scores); or use target: hard"
            )
        logits = (ratings[..., 0].to(dtype) / label_temperature).masked_fill(~mask, NEG_INF)
        return torch.softmax(logits, dim=1)
    raise ValueError(f"adpo: target must be 'hard' or 'soft', got '{target}'")


@objective(
    "adpo",
    family="noise_robust",
    feedback="ranking",
    needs=("reference",),
    paper="Wang Zixian 2025, ADPO: Anchored Direct Preference Optimization, arXiv 2510.18913",
)
def adpo(
    batch: ListBatch,
    tau: float = 10.0,
    target: str = "hard",
    label_smoothing: float = 0.0,
    label_temperature: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """ADPO: L = KL(q ‖ softmax_i((log π(y_i) - log π_anchor(y_i)) / τ)) over the list's K candidates.

    = Σ_i q_i log q_i - Σ_i q_i log softmax_i(ρ/τ); the anchor is π_ref (a fixed anchor; a dynamic one
    is the ``tr_dpo`` reference sync). τ plays 1/β (default 10 ⇔ β = 0.1). K = 2 with q = (1, 0) is DPO
    with β = 1/τ; q = (1-ε, ε) is cDPO plus the constant -H(q). Pairs, K-lists and soft targets all go
    through the same formula; padding gets q = 0 and is excluded from the softmax.
    Checked against the abstract of arXiv 2510.18913 (v1–v4) only; the code it says it releases was not
    found in the index, so the formula is unverified beyond the abstract.
    """
    if tau <= 0:
        raise ValueError(f"adpo: tau must be > 0, got {tau}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"adpo: label_smoothing must be in [0, 1), got {label_smoothing}")
    mask = batch.mask
    q = adpo_target(batch, target, label_smoothing, label_temperature).detach()
    logits = (batch.items.logratios / tau).masked_fill(~mask, NEG_INF)
    log_p = torch.log_softmax(logits, dim=1)
    entropy_term = torch.where(q > 0, q * torch.log(q.clamp(min=1e-30)), torch.zeros_like(q)).sum(dim=1)
    cross = torch.where(q > 0, q * log_p, torch.zeros_like(q)).sum(dim=1)
    return entropy_term - cross, list_metrics(batch, batch.items.logratios / tau)


def _base_pair_loss(h: Tensor, base: str, beta: float) -> Tensor:
    """ℓ(h) of the base pair loss; ℓ(-h) is the loss with the label flipped."""
    if base == "dpo":
        return -F.logsigmoid(beta * h)
    if base == "ipo":
        return (h - 1 / (2 * beta)) ** 2
    raise ValueError(f"lcpo: base must be 'dpo' or 'ipo', got '{base}'")


def _lcpo_posterior(h: Tensor, eps: float, base: str, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """(ℓ(h), ℓ(-h), w): the base loss both ways and the posterior w that the label is correct, w detached."""
    loss_given, loss_flipped = _base_pair_loss(h, base, beta), _base_pair_loss(-h, base, beta)
    with torch.no_grad():
        p = torch.sigmoid(loss_flipped - loss_given)
        w = (1 - eps) * p / ((1 - eps) * p + eps * (1 - p)).clamp(min=1e-12)
    return loss_given, loss_flipped, w


def _lcpo_error_sums(
    batch: PairBatch, state: dict[str, Any], beta: float = 0.1, epsilon: float = 0.1, base: str = "dpo"
) -> Tensor:
    """[Σ (1 − w_i), n] over a batch's pairs, w from the ε the step's loss used."""
    h = (batch.chosen.logratios - batch.rejected.logratios).detach()
    _, _, w = _lcpo_posterior(h, float(state.get("epsilon", epsilon)), base, beta)
    return torch.stack([(1 - w).double().sum(), torch.tensor(float(h.numel()), dtype=torch.float64)])


def _lcpo_fold_epsilon(
    state: dict[str, Any], sums: list[float], epsilon: float = 0.1, learn_epsilon: bool = True,
    epsilon_momentum: float = 0.9,
) -> None:  # fmt: skip
    """ε ← clamp(m·ε + (1 − m)·mean_step(1 − w), [1e-4, 0.5)) once per step."""
    errors, n = sums
    if learn_epsilon and n > 0:
        new = epsilon_momentum * float(state.get("epsilon", epsilon)) + (1 - epsilon_momentum) * errors / n
        state["epsilon"] = min(max(new, 1e-4), 0.4999)


@objective(
    "lcpo",
    family="noise_robust",
    feedback="pairs",
    needs=("reference",),
    paper="Cao et al. 2025, Latent Collective Preference Optimization, arXiv 2509.24159",
    step_statistics=StepStatistics(_lcpo_error_sums, _lcpo_fold_epsilon, size=2, after_step=True),
)
def lcpo(
    batch: PairBatch,
    state: dict[str, Any],
    beta: float = 0.1,
    epsilon: float = 0.1,
    learn_epsilon: bool = True,
    base: str = "dpo",
    epsilon_momentum: float = 0.9,
) -> tuple[Tensor, dict[str, Tensor]]:
    """LCPO: L_i = w_i·ℓ(h_i) + (1 - w_i)·ℓ(-h_i), w_i = (1-ε)p_i / ((1-ε)p_i + ε(1-p_i)), w detached.

    h = ρ(y_w) - ρ(y_l); p_i = P(y_w ≻ y_l) from the base loss by the Boltzmann link
    p ∝ exp(-ℓ): p = σ(ℓ(-h) - ℓ(h)) (σ(βh) for DPO). E-step: w_i, the posterior that the label is
    correct given noise rate ε; M-step: the weighted loss. ε (in ``state``, starting at ``epsilon``) is
    then re-estimated as ε ← m·ε + (1 - m)·mean_i(1 - w_i) (``learn_epsilon``; m = ``epsilon_momentum``,
    our smoothing for small batches, m = 0 is the plain per-batch M-step), clamped to [1e-4, 0.5), once per
    step from the whole step's global batch after its loss (``step_statistics``: ε does not depend on
    micro-batches or processes; evaluation never moves it). With
    ε = 0 fixed it is the base loss. ``base``: dpo or ipo.
    Reconstructed from the abstract and the method section of arXiv 2509.24159 (as summarised in
    public reviews); no official code found — unverified.
    """
    h = batch.chosen.logratios - batch.rejected.logratios
    eps = float(state.get("epsilon", epsilon))
    loss_given, loss_flipped, w = _lcpo_posterior(h, eps, base, beta)
    loss = w * loss_given + (1 - w) * loss_flipped
    rewards_c, rewards_r = (
        (beta * batch.chosen.logratios).detach(),
        (beta * batch.rejected.logratios).detach(),
    )
    metrics = {
        **pair_reward_metrics(rewards_c, rewards_r),
        "label_correct_prob": w,
        "epsilon": torch.tensor(float(state.get("epsilon", eps))),
    }
    return loss, metrics
