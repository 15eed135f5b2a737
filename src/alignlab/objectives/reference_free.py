"""Reference-free and SFT-style objectives (METHODS.md section E): TPO, ASFT, AFT, PoFT, RAFT, SuperHF.

None of these load a reference model except SuperHF (its KL prior). RAFT and SuperHF are loops in
their papers (sample K, keep the best by reward, fine-tune, repeat); what is registered here is the
offline step: the selection is the ``prepare`` hook over records that already carry their K samples
and rewards, and the loss is the fine-tuning on the kept sample. The online loop comes with the online
family, which reuses these objectives.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.data.records import Record, RecordError
from alignlab.objectives.metrics import pair_reward_metrics
from alignlab.objectives.record_rewrites import best_indices, single, where
from alignlab.objectives.registry import objective
from alignlab.objectives.score_tensors import nll, rows_first
from alignlab.objectives.views import ListBatch, PairBatch, PointBatch

TPO_LOSSES = ("sigmoid", "hinge", "ipo", "tpo-l")


# --------------------------------------------------------------------------------------- TPO
def tpo_triple_prepare(records: list[Record]) -> list[Record]:
    """Triples from K >= 3 rankings, as the TPO paper builds them from UltraFeedback: the best
    completion becomes the gold ``y_ref`` (role ``gold``), the second best the chosen ``y_w`` and the
    worst the rejected ``y_l``. Records that already mark a ``gold`` role, and K = 2 pairs, pass unchanged
    (a pair without gold imitates its chosen answer, see :func:`tpo_triple`)."""
    out = []
    for n, record in enumerate(records):
        if record.ranking is None or record.k < 3 or any(record.completion_roles):
            out.append(record)
            continue
        order = sorted(range(record.k), key=lambda i: (record.ranking[i], i))
        gold, chosen, rejected = order[0], order[1], order[-1]
        if record.ranking[chosen] == record.ranking[rejected]:
            raise RecordError(
                "TPO needs the second-best and the worst completion to differ in rank",
                where(record, n),
                "give a strict ranking or mark the gold answer with roles",
            )
        new = single(record.prompt, record.completions[chosen], record)
        new.completions = [record.completions[chosen], record.completions[rejected], record.completions[gold]]
        new.ranking = [0, 1, 0]
        new.roles = ["", "", "gold"]
        out.append(new)
    return out


@objective(
    "tpo_triple",
    family="reference_free",
    feedback="pairs",
    paper="Saeidi et al. 2024, Triple Preference Optimization, arXiv 2405.16681",
    prepare=tpo_triple_prepare,
)
def tpo_triple(
    batch: PairBatch,
    beta: float = 0.01,
    alpha: float = 1.0,
    loss_type: str = "sigmoid",
    gamma: float = 0.5,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Triple Preference Optimization: L = α·NLL_tok-mean(y_ref) + L_pref(y_w, y_l), no reference model.

    L_pref by ``loss_type``: ``sigmoid`` (paper) -(1-ε)·log σ(β·Δ) - ε·log σ(-β·Δ) with Δ = log π(y_w) -
    log π(y_l) (summed log-probs); ``hinge`` relu(1 - β·Δ); ``ipo`` (Δ̄ - 1/(2β))² on mean log-probs;
    ``tpo-l`` -log σ(β·Δ̄ - γ) on mean log-probs (Δ̄ = ℓ̄(y_w) - ℓ̄(y_l)), smoothed like sigmoid.
    The gold answer y_ref is the completion with role ``gold`` (see :func:`tpo_triple_prepare`); a pair
    without one uses its chosen answer, which makes TPO with α = 1 the CPO loss. Defaults are TRL's
    TPOConfig (β = 0.01, α = 1, γ = 0.5, the paper's Llama-3 setting). NLL is each example's token mean
    (TRL takes the token mean over the whole batch).
    Checked: huggingface/trl trl/experimental/tpo/tpo_trainer.py `_compute_loss` and tpo_config.py.
    """
    if loss_type not in TPO_LOSSES:
        raise ValueError(f"tpo_triple: loss_type must be one of {TPO_LOSSES}, got '{loss_type}'")
    chosen, rejected = batch.chosen, batch.rejected
    if loss_type in ("ipo", "tpo-l"):
        delta = chosen.mean_logps - rejected.mean_logps
    else:
        delta = chosen.logps - rejected.logps
    if loss_type == "sigmoid":
        pref = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(
            -beta * delta
        )
    elif loss_type == "hinge":
        pref = torch.relu(1 - beta * delta)
    elif loss_type == "ipo":
        pref = (delta - 1 / (2 * beta)) ** 2
    else:
        z = beta * delta - gamma
        pref = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    gold_nll = -chosen.mean_logps
    has_gold = torch.zeros_like(gold_nll)
    if "gold" in batch.aux:
        gold = rows_first(batch.aux["gold"])
        has_gold = batch.aux_mask["gold"][:, 0].to(gold_nll.dtype)
        gold_nll = torch.where(has_gold > 0, -gold.mean_logps, gold_nll)
    loss = pref + alpha * gold_nll if alpha != 0 else pref
    metrics = _reward_metrics(beta * chosen.logps.detach(), beta * rejected.logps.detach(), chosen, rejected)
    metrics["nll/gold"] = gold_nll.detach()
    metrics["gold_fraction"] = has_gold
    return loss, metrics


def _reward_metrics(rw: Tensor, rl: Tensor, chosen: Any, rejected: Any) -> dict[str, Tensor]:
    return pair_reward_metrics(rw, rl, chosen.logps, rejected.logps)


# -------------------------------------------------------------------------------------- ASFT
def _log1m_exp(x: Tensor) -> Tensor:
    """log(1 - e^x) for x < 0, stable near 0 (probability close to 1)."""
    x = x.clamp(max=-1e-6)
    return torch.where(x > -0.6931, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


@objective(
    "asft",
    family="reference_free",
    feedback="pairs",
    paper="Wang et al. 2024, ASFT: Aligned Supervised Fine-Tuning through Absolute Likelihood, arXiv 2409.10571",
)
def asft(batch: PairBatch, lam: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """ASFT: L = NLL(y_w) + λ·[-log σ(z(y_w)) - log σ(-z(y_l))], z(y) = log odds of P̄(y) = exp(ℓ̄(y)).

    Each response is classified on its own (absolute likelihood) instead of a Bradley–Terry difference:
    σ(z) = P̄, so the bracket is -ℓ̄(y_w) - log(1 - P̄(y_l)): the chosen term is minimised as P̄(y_w) → 1
    and the rejected one as P̄(y_l) → 0, with no coupling (unlike ORPO's odds ratio). ℓ̄ is the token
    mean log-prob (as ORPO); NLL is the token-mean NLL of y_w. λ = 0.1 follows ORPO's default.
    Checked against the paper (abstract and loss as read in arXiv 2409.10571v1); no official code found in
    the index, so λ's default is unverified.
    """
    lw, ll = batch.chosen.mean_logps, batch.rejected.mean_logps
    align = -lw - _log1m_exp(ll)
    loss = -lw + lam * align
    metrics = _reward_metrics(lw.detach(), ll.detach(), batch.chosen, batch.rejected)
    metrics["asft/align"] = align.detach()
    return loss, metrics


# --------------------------------------------------------------------------------------- AFT
def aft_prepare(records: list[Record]) -> list[Record]:
    """Binary feedback (``labels``) becomes a two-level ranking: correct CoTs rank 0, wrong ones rank 1."""
    out = []
    for record in records:
        if record.ranking is None and record.labels is not None:
            new = single(record.prompt, record.completions[0], record)
            new.completions = list(record.completions)
            new.ranking = [0 if good else 1 for good in record.labels]
            new.meta = dict(record.meta)
            out.append(new)
        else:
            out.append(record)
    return out


@objective(
    "aft",
    family="reference_free",
    feedback="ranking",
    paper="Wang et al. 2023, Making LLMs Better Reasoners with Alignment (AFT), arXiv 2309.02144",
    prepare=aft_prepare,
)
def aft(
    batch: ListBatch,
    constraint: str = "boundary",
    boundary_margin: float = 0.5,
    constraint_weight: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Alignment Fine-Tuning's constrained alignment loss on K sampled CoTs per question.

    Score s(y) = ℓ̄(y), the token-mean log-prob. Alignment: L_A = log(1 + Σ_{i≻j} exp(s_j - s_i)) over
    every ordered pair of different rank (binary feedback: all positives above all negatives).
    Constraint keeping negative scores from collapsing (``constraint``):
    ``boundary``: L_C = Σ_{n ∉ best} max(0, B - s_n), B = sg(min_{p ∈ best} s_p) - ``boundary_margin``;
    ``detach``: negatives are detached inside L_A (only the positives are pushed), no L_C;
    ``none``: plain L_A (the unconstrained ranking loss the paper warns about).
    L = L_A + ``constraint_weight``·L_C. With no negatives L = 0 (stage 1, VFT, is plain `sft`).
    Unverified: reconstructed from the paper's description (alignment + a boundary constraint with a
    boundary tied to the positive scores); the exact boundary B could not be read, no official code found.
    """
    if constraint not in ("boundary", "detach", "none"):
        raise ValueError(f"aft: constraint must be boundary, detach or none, got '{constraint}'")
    s = batch.items.mean_logps  # [G, K]
    mask = batch.mask
    ranks = batch.ranks
    better = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)  # [G, i, j]
    s_neg = s.detach() if constraint == "detach" else s
    diff = s_neg.unsqueeze(1) - s.unsqueeze(2)  # s_j - s_i at [g, i, j]
    diff = torch.where(better, diff, torch.full_like(diff, -1e4))
    has_pair = better.flatten(1).any(-1)
    align = torch.where(has_pair, F.softplus(torch.logsumexp(diff.flatten(1), -1)), torch.zeros_like(s[:, 0]))
    loss = align
    best_rank = torch.where(mask, ranks, torch.full_like(ranks, float("inf"))).min(-1, keepdim=True).values
    positive = mask & (ranks == best_rank)
    negative = mask & ~positive
    if constraint == "boundary":
        min_pos = (
            torch.where(positive, s.detach(), torch.full_like(s, float("inf"))).min(-1, keepdim=True).values
        )
        boundary = min_pos - boundary_margin
        below = torch.where(negative, torch.relu(boundary - s), torch.zeros_like(s))
        loss = loss + constraint_weight * below.sum(-1)
    return loss, {"aft/align": align.detach(), "aft/pairs": better.flatten(1).sum(-1).float()}


# -------------------------------------------------------------------------------------- PoFT
@objective(
    "poft",
    family="reference_free",
    feedback="demonstrations",
    paper="Fan et al. 2024, Preference-Oriented Supervised Fine-Tuning (PoFT), arXiv 2409.12865",
)
def poft(batch: PointBatch, beta: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """PoFT: L = -(1/M)·Σ_m log σ(β·[ℓ̄_θ(y|x) - ℓ̄_{A_m}(y|x)]) on SFT data.

    The target model should prefer each demonstration more than M frozen aligned LLMs A_m do, so the
    gradient weight on an example, σ(-β·margin), is small where the aligned LLMs already find y likely
    (a data-quality signal). Record layout: every named rating in ``scores`` of a completion is one
    aligned LLM's token-mean log-prob of that completion, precomputed, e.g.
    ``"scores": [{"llama3_instruct": -1.21, "qwen2_instruct": -1.43}]``; missing ratings are skipped.
    Unverified: from the abstract and METHODS.md (β default 1.0 is ours).
    """
    items = batch.items
    if items.ratings is None:
        raise ValueError(
            "poft needs the aligned LLMs' token-mean log-probs of each completion as named ratings "
            "(record 'scores', e.g. {'llama3_instruct': -1.2}); none were found"
        )
    anchors = items.ratings  # [N, M]
    present = ~torch.isnan(anchors)
    if not present.any(-1).all():
        raise ValueError("poft: some completions have no aligned-LLM log-prob in their 'scores'")
    margin = items.mean_logps.unsqueeze(-1) - torch.nan_to_num(anchors)
    terms = torch.where(present, -F.logsigmoid(beta * margin), torch.zeros_like(margin))
    loss = terms.sum(-1) / present.sum(-1).to(terms.dtype)
    weight = torch.where(present, torch.sigmoid(-beta * margin), torch.zeros_like(margin)).sum(-1)
    return loss, {
        "poft/grad_weight": (weight / present.sum(-1)).detach(),
        "logps/chosen": items.logps.detach(),
    }


# ------------------------------------------------------------------------------ RAFT, SuperHF
def raft_prepare(records: list[Record], score_key: str = "") -> list[Record]:
    """Best-of-K selection: each record (a prompt and its K samples, with a ranking or reward ``scores``)
    becomes a demonstration of its best sample (the first among ties). ``score_key`` names the reward
    rating when completions carry several."""
    out = []
    for n, record in enumerate(records):
        best = best_indices(record, n, score_key)[0]
        out.append(single(record.prompt, record.completions[best], record, raft_selected_from=record.k))
    return out


@objective(
    "raft",
    family="sft",
    feedback="demonstrations",
    paper="Dong et al. 2023, RAFT: Reward rAnked FineTuning, arXiv 2304.06767",
    prepare=raft_prepare,
    aliases=("rejection_sampling_sft",),
)
def raft(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """RAFT's fine-tuning step: L = -(1/|y*|)·log π(y*|x) on y* = argmax_k r(x, y_k) (local ranking).

    The selection is :func:`raft_prepare` (records with K samples and rewards in ``scores``, or a
    ranking); the loss is maximum likelihood on the kept sample. The generate–rank–fine-tune loop, the
    global-ranking variant and K (paper 8) belong to the online family.
    Unverified: paper's algorithm (OptimalScale/LMFlow raft_aligner not opened).
    """
    return nll(batch.items, normalize, "raft")


@objective(
    "superhf",
    family="sft",
    feedback="demonstrations",
    paper="Mukobi et al. 2023, SuperHF: Supervised Iterative Learning from Human Feedback, arXiv 2310.16763",
    needs=("token_kl_reverse",),
    prepare=raft_prepare,
)
def superhf(batch: PointBatch, kl_coef: float = 0.35) -> tuple[Tensor, dict[str, Tensor]]:
    """SuperHF's step: L = -(1/|y*|)·log π_θ(y*|x) + β·(1/|y*|)·Σ_t KL(π_θ‖π_ref)_t on the reward-filtered
    sample y*.

    KL_t is the full-vocabulary KL(π_θ(·|x, y_<t) ‖ π_ref(·|x, y_<t)) at each completion position, the
    paper's direction (the engine need and Scores field ``token_kl_reverse``).
    Filtering (top-1 of K by reward) is :func:`raft_prepare`; with β = 0 this is `raft`. Sampling,
    super-batches and prompt accumulation belong to the online loop.
    Unverified: paper description (β = 0.35 from METHODS.md).
    """
    items = batch.items
    token_kl = items.token_kl_reverse
    if token_kl is None or items.token_mask is None:
        raise ValueError("superhf needs per-token KL(π_θ‖π_ref) (engine need 'token_kl_reverse')")
    kl = (token_kl * items.token_mask.to(token_kl.dtype)).sum(-1) / items.lengths.clamp(min=1)
    loss = -items.mean_logps + kl_coef * kl
    return loss, {"kl": kl.detach(), "logps/chosen": items.logps.detach()}
