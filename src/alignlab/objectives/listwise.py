"""Listwise objectives (METHODS.md section C): losses over K ranked completions of one prompt.

Every function receives a :class:`ListBatch`: ``items`` is ``[G, K]`` padded, ``ranks`` holds the rank of
each completion (lower is better, ties share a rank, ``+inf`` on padding) and ``mask`` marks real items.
Padding never contributes to a loss or a gradient; ties are handled as each docstring says.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.metrics import pair_reward_metrics
from alignlab.objectives.registry import objective
from alignlab.objectives.views import ListBatch

NEG_INF = float("-inf")


# ----------------------------------------------------------------------------------------------- helpers
def list_labels(batch: ListBatch) -> Tensor:
    """Graded relevance ψ per item (higher is better): the first named rating where present, else -rank."""
    ratings = batch.items.ratings
    if ratings is not None and ratings.dim() == 3 and ratings.shape[-1] > 0:
        psi = ratings[..., 0]
        if bool(torch.isfinite(psi[batch.mask]).all()):
            return torch.where(batch.mask, psi, torch.zeros_like(psi))
    return torch.where(batch.mask, -batch.ranks, torch.zeros_like(batch.ranks)).to(batch.items.logps.dtype)


def best_index(batch: ListBatch) -> Tensor:
    """[G] index of the best real item (lowest rank; the first one among ties)."""
    return torch.where(batch.mask, batch.ranks, torch.full_like(batch.ranks, math.inf)).argmin(dim=1)


def worst_index(batch: ListBatch) -> Tensor:
    """[G] index of the worst real item (highest rank; the last one among ties)."""
    ranks = torch.where(batch.mask, batch.ranks, torch.full_like(batch.ranks, -math.inf))
    k = ranks.shape[1]
    return (k - 1) - ranks.flip(1).argmax(dim=1)


def list_metrics(batch: ListBatch, rewards: Tensor) -> dict[str, Tensor]:
    """TRL-named metrics comparing the best and the worst real item of each list."""
    rows = torch.arange(rewards.shape[0])
    chosen = rewards[rows, best_index(batch)].detach()
    rejected = rewards[rows, worst_index(batch)].detach()
    logps = batch.items.logps
    return pair_reward_metrics(
        chosen, rejected, logps[rows, best_index(batch)], logps[rows, worst_index(batch)]
    )


def _check_lists(batch: ListBatch, name: str) -> None:
    if batch.mask.shape != batch.items.logps.shape:
        raise ValueError(
            f"{name}: ListBatch mask {tuple(batch.mask.shape)} does not match items {batch.items.logps.shape}"
        )


def plackett_luce_nll(scores: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
    """-log P(ranking | scores) under Plackett–Luce, per list, with ties handled as Breslow's partial likelihood.

    Item k contributes ``s_k - log Σ_{m: rank_m >= rank_k} exp(s_m)`` (its competitors are itself, the items
    tied with it and every worse item). Without ties this is exactly ListMLE; with ties it does not depend
    on the order in which tied items are listed. Padding (mask False) is excluded everywhere.
    """
    big = torch.where(mask, ranks, torch.full_like(ranks, math.inf))
    # competitors[g, k, m]: m is real and not better than k.
    competitors = (big.unsqueeze(1) >= big.unsqueeze(2)) & mask.unsqueeze(1) & mask.unsqueeze(2)
    expanded = scores.unsqueeze(1).expand(-1, scores.shape[1], -1)
    log_denominator = torch.logsumexp(expanded.masked_fill(~competitors, NEG_INF), dim=2)
    terms = torch.where(mask, scores - torch.where(mask, log_denominator, torch.zeros_like(scores)), 0.0)
    return -terms.sum(dim=1)


# ------------------------------------------------------------------------------------------------ losses
@objective(
    "lipo_lambda",
    family="listwise",
    feedback="scores",
    needs=("reference",),
    paper="Liu et al. 2024, LiPO: Listwise Preference Optimization through Learning-to-Rank, arXiv 2402.01878",
)
def lipo_lambda(batch: ListBatch, beta: float = 0.05) -> tuple[Tensor, dict[str, Tensor]]:
    """LiPO-λ: L = -Σ_{i,j: ψ_i > ψ_j} Δ_ij · log σ(s_i - s_j), s_i = β·(log π(y_i) - log π_ref(y_i)).

    Lambda weight (LambdaLoss, Wang et al. 2018): Δ_ij = |G_i - G_j| · |1/D(τ_i) - 1/D(τ_j)|, gain
    G_i = 2^{ψ_i} - 1, discount D(τ) = log2(1 + τ), τ_i = position of y_i when the list is sorted by the
    current scores s (1 = top; equal scores keep list order). Δ is a constant (no gradient).
    ψ is the first named rating (raw, not normalised) or, for ranking-only data, -rank. Ties in ψ make no
    pair. β default 0.05 (paper recall; the paper sweeps 0.05–0.1). K = 2 reduces to DPO weighted by
    Δ = (2^{ψ_1} - 2^{ψ_2})·(1 - 1/log2 3).
    Checked against the LiPO-λ formula as restated from the paper (emergentmind.com/topics/lipo) and the
    LambdaLoss/NDCG weights; the paper has no public code (Google internal). Only the overall scale
    depends on the log base of D.
    """
    _check_lists(batch, "lipo_lambda")
    mask = batch.mask
    scores = beta * batch.items.logratios
    psi = list_labels(batch)
    with torch.no_grad():
        s = scores.detach().masked_fill(~mask, NEG_INF)
        k = s.shape[1]
        index = torch.arange(k)
        earlier = index.unsqueeze(0) < index.unsqueeze(1)  # [k_i, k_j]: j listed before i
        ahead = (s.unsqueeze(1) > s.unsqueeze(2)) | ((s.unsqueeze(1) == s.unsqueeze(2)) & earlier)
        position = 1 + (ahead & mask.unsqueeze(1)).sum(dim=2)  # τ_i, 1-based among real items
        inv_discount = 1.0 / torch.log2(1.0 + position.to(scores.dtype))
        gain = torch.pow(2.0, psi) - 1.0
        delta = (gain.unsqueeze(2) - gain.unsqueeze(1)).abs() * (
            inv_discount.unsqueeze(2) - inv_discount.unsqueeze(1)
        ).abs()
        pairs = (psi.unsqueeze(2) > psi.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    pair_loss = F.softplus(-(scores.unsqueeze(2) - scores.unsqueeze(1)))
    loss = torch.where(pairs, delta * pair_loss, torch.zeros_like(pair_loss)).sum(dim=(1, 2))
    return loss, list_metrics(batch, scores)


@objective(
    "listmle",
    family="listwise",
    feedback="ranking",
    needs=("reference",),
    aliases=("dpo_plackett_luce",),
    paper="Liu et al. 2024 (LiPO, arXiv 2402.01878) ListMLE; Rafailov et al. 2023 (DPO, arXiv 2305.18290) App. A.3",
)
def listmle(batch: ListBatch, beta: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """ListMLE / DPO Plackett–Luce: L = -Σ_{k=1..K} [ s_(k) - log Σ_{m=k..K} exp(s_(m)) ], s = β·ρ(y).

    The negative log-likelihood of the observed ranking under a Plackett–Luce model of the implicit
    rewards; the DPO paper (Appendix A.3) derives exactly this as DPO's K-way generalisation, so
    ``dpo_plackett_luce`` is an alias. K = 2 is DPO: -log σ(s_(1) - s_(2)). Ties use Breslow's partial
    likelihood (an item's competitors are the items tied with it and all worse items), so the loss does
    not depend on the order of tied items. Adding a constant to every ρ of a list leaves it unchanged.
    Checked against DPO paper Eq. 18 (App. A.3) and the standard ListMLE (Xia et al. 2008).
    """
    _check_lists(batch, "listmle")
    scores = beta * batch.items.logratios
    return plackett_luce_nll(scores, batch.ranks, batch.mask), list_metrics(batch, scores)


@objective(
    "pro",
    family="listwise",
    feedback="scores",
    needs=(),
    paper="Song et al. 2023, Preference Ranking Optimization for Human Alignment, arXiv 2306.17492",
)
def pro(batch: ListBatch, sft_weight: float = 2.0) -> tuple[Tensor, dict[str, Tensor]]:
    """PRO: L = Σ_{k=1..n-1} -log[ e^{s_k T_k^k} / (e^{s_k T_k^k} + Σ_{i>k} e^{s_i T_k^i}) ] + w·(n-1)²·NLL(y_1).

    Items are sorted by reward r (descending; the first rating, or -rank for ranking-only data);
    s_i = mean per-token log π(y_i) (no reference); dynamic temperatures T_k^i = r_k - r_i for i > k and
    T_k^k = max_{i>k} T_k^i; the SFT term uses the **summed** log-prob of the best item, weighted by
    w·(n-1)² with n the number of real items in the list (the code's ``training_stage_num``). With equal
    rewards every temperature is 0: the rank terms are constants log(n-k+1) and only the SFT term trains.
    The official code averages each rank term over the batch before summing; per list the sum is the same.
    Checked: AlibabaResearch/DAMO-ConvAI PRO/train/utils/process_manager.py ProcessManager.compute_loss
    (sft_weight default 2 in PRO/train/utils/config.py).
    """
    _check_lists(batch, "pro")
    mask = batch.mask
    reward = list_labels(batch).masked_fill(~mask, NEG_INF)
    order = torch.sort(reward, dim=1, descending=True, stable=True).indices
    r = torch.gather(reward, 1, order)
    m = torch.gather(mask, 1, order)
    s = torch.gather(batch.items.mean_logps, 1, order)
    summed = torch.gather(batch.items.logps, 1, order)
    n = m.sum(dim=1)
    r0 = torch.where(m, r, torch.zeros_like(r))
    temps = (r0.unsqueeze(2) - r0.unsqueeze(1)).detach()  # [G, k, i] = r_k - r_i
    k_len = r.shape[1]
    later = torch.arange(k_len).unsqueeze(0) > torch.arange(k_len).unsqueeze(1)  # i > k
    valid_neg = later.unsqueeze(0) & m.unsqueeze(1) & m.unsqueeze(2)
    pos_temp = temps.masked_fill(~valid_neg, NEG_INF).max(dim=2).values
    has_neg = valid_neg.any(dim=2)
    pos_temp = torch.where(has_neg, pos_temp, torch.zeros_like(pos_temp))
    pos_logit = s * pos_temp
    neg_logits = (s.unsqueeze(1) * temps).masked_fill(~valid_neg, NEG_INF)
    all_logits = torch.cat([pos_logit.unsqueeze(2), neg_logits], dim=2)
    rank_terms = torch.logsumexp(all_logits, dim=2) - pos_logit
    rank_loss = torch.where(has_neg, rank_terms, torch.zeros_like(rank_terms)).sum(dim=1)
    sft = -summed[:, 0] * sft_weight * (n - 1).clamp(min=0).to(s.dtype) ** 2
    metrics = list_metrics(batch, batch.items.mean_logps)
    metrics["rank_loss"] = rank_loss.detach()
    return rank_loss + sft, metrics


@objective(
    "rrhf",
    family="listwise",
    feedback="ranking",
    needs=(),
    paper="Yuan et al. 2023, RRHF: Rank Responses to Align Language Models with Human Feedback, arXiv 2304.05302",
)
def rrhf(
    batch: ListBatch, rank_weight: float = 1.0, length_penalty: float = 1.0, sft_reduction: str = "sum"
) -> tuple[Tensor, dict[str, Tensor]]:
    """RRHF: L = w·Σ_{i,j: r_i < r_j} max(0, p_i - p_j) - log π(y_best), p_i = log π(y_i) / |y_i|^{length_penalty}.

    Only the order of the rewards matters (ties make no pair), so rankings suffice. The SFT term is the
    NLL of the best item (first among ties): ``sft_reduction="sum"`` is the paper's Σ_t (default),
    ``"mean"`` its per-token mean. The official code's SFT term is a mean over *padded* positions, which
    depends on batch padding; we do not reproduce it. ``rank_weight`` 1 as in the released scripts
    (train.sh ``--rrhf_weight 1``; the code's argument default is 100).
    Checked: GanjinZero/RRHF train.py RRHFTrainer (get_score, rrhf_loss, sft_loss, compute_loss), train.sh.
    """
    _check_lists(batch, "rrhf")
    if sft_reduction not in ("sum", "mean"):
        raise ValueError(f"rrhf: sft_reduction must be 'sum' or 'mean', got '{sft_reduction}'")
    mask = batch.mask
    items = batch.items
    p = items.logps / items.lengths.clamp(min=1) ** length_penalty
    ranks = batch.ranks
    worse = (
        (ranks.unsqueeze(2) > ranks.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    )  # i worse than j
    hinge = F.relu(p.unsqueeze(2) - p.unsqueeze(1))
    rank_loss = torch.where(worse, hinge, torch.zeros_like(hinge)).sum(dim=(1, 2))
    rows = torch.arange(p.shape[0])
    best = best_index(batch)
    target = items.logps if sft_reduction == "sum" else items.mean_logps
    sft = -target[rows, best]
    metrics = list_metrics(batch, p)
    metrics["rank_loss"] = rank_loss.detach()
    return rank_weight * rank_loss + sft, metrics
