"""Token-level and weighted objectives (METHODS.md section F): TDPO, T-REG, Dense DPO, MODPO, dynamic β.

TR-DPO (reference sync) and WPO (sequence weights) of section F are modifiers that apply to every pair
loss; they live with the modifiers, not here.

Per-token tensors are ``[P, T]`` padded, with ``token_mask`` marking real completion tokens (see
scoring/scores.py). ``token_kl[p, t]`` is KL(π_ref(·|x, y_<t) ‖ π_θ(·|x, y_<t)) over the whole vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.data.records import Record, RecordError
from alignlab.objectives.metrics import pair_reward_metrics
from alignlab.objectives.record_rewrites import where
from alignlab.objectives.registry import objective
from alignlab.objectives.score_tensors import masked_sum, token_fields
from alignlab.objectives.views import PairBatch
from alignlab.scoring.scores import Scores


def _pair_metrics(batch: PairBatch, rw: Tensor, rl: Tensor) -> dict[str, Tensor]:
    return pair_reward_metrics(rw, rl, batch.chosen.logps, batch.rejected.logps)


# -------------------------------------------------------------------------------------- TDPO
def _sequential_kl(scores: Scores, who: str) -> Tensor:
    if scores.token_kl is None or scores.token_mask is None:
        raise ValueError(f"{who} needs the per-position KL to the reference (engine need 'token_kl')")
    return masked_sum(scores.token_kl, scores.token_mask)


def _tdpo(
    batch: PairBatch, beta: float, alpha: float, tdpo2: bool, who: str
) -> tuple[Tensor, dict[str, Tensor]]:
    u = batch.chosen.logratios - batch.rejected.logratios
    kl_w, kl_l = _sequential_kl(batch.chosen, who), _sequential_kl(batch.rejected, who)
    if tdpo2:
        logits = u - alpha * (kl_l - kl_w.detach())
    else:
        logits = u - (kl_l - kl_w)
    metrics = _pair_metrics(
        batch, beta * (batch.chosen.logratios + kl_w), beta * (batch.rejected.logratios + kl_l)
    )
    metrics.update(
        {"kl/chosen": kl_w.detach(), "kl/rejected": kl_l.detach(), "kl": (kl_w + kl_l).detach() / 2}
    )
    return -F.logsigmoid(beta * logits), metrics


@objective(
    "tdpo1",
    family="token_level",
    feedback="pairs",
    paper="Zeng et al. 2024, Token-level Direct Preference Optimization, arXiv 2404.11999",
    needs=("reference", "token_kl"),
)
def tdpo1(batch: PairBatch, beta: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """TDPO₁: L = -log σ(β·[u - (D(y_l) - D(y_w))]), u = ρ(y_w) - ρ(y_l) (summed log-ratios).

    D(y) = Σ_t KL(π_ref(·|x, y_<t) ‖ π_θ(·|x, y_<t)) over the response positions: the sequential forward
    KL, with the reference's distribution as the first argument (official `per_position_kl =
    Σ_v p_ref·(log p_ref - log p_θ)`). Gradients flow through both KL terms. Implicit rewards logged as
    β·(ρ + D) like the official code. β = 0.1 (config/loss/tdpo.yaml).
    Checked: Vance0124/Token-level-Direct-Preference-Optimization trainers.py `tdpo_loss`,
    `_tdpo_get_batch_logps`, config/loss/tdpo.yaml.
    """
    return _tdpo(batch, beta, 1.0, False, "tdpo1")


@objective(
    "tdpo2",
    family="token_level",
    feedback="pairs",
    paper="Zeng et al. 2024, Token-level Direct Preference Optimization, arXiv 2404.11999",
    needs=("reference", "token_kl"),
)
def tdpo2(batch: PairBatch, beta: float = 0.1, alpha: float = 0.5) -> tuple[Tensor, dict[str, Tensor]]:
    """TDPO₂: L = -log σ(β·[u - α·(D(y_l) - sg(D(y_w)))]), notation as `tdpo1`.

    The chosen response's sequential KL is detached (stop-gradient), so the KL gradient only pushes the
    rejected response's distributions back toward the reference; α weights that term. β = 0.1, α = 0.5
    (official config/loss/tdpo.yaml, which sets ``if_tdpo2: true`` in its current version; an older
    version set false while `tdpo_loss` defaulted to TDPO₂, hence the two names here).
    Checked: Vance0124/Token-level-Direct-Preference-Optimization trainers.py `tdpo_loss`
    (`chosen_rejected_logps_margin + alpha * (chosen_position_kl.detach() - rejected_position_kl)`).
    """
    return _tdpo(batch, beta, alpha, True, "tdpo2")


# ----------------------------------------------------------------------------------- Dense DPO
def _weighted_logps(logps: Tensor, mask: Tensor, weights: Tensor, average: bool) -> Tensor:
    weighted = mask * weights
    total = (logps * weighted).sum(-1)
    return total / weighted.sum(-1).clamp(min=1e-8) if average else total


@objective(
    "dense_dpo",
    family="token_level",
    feedback="pairs",
    paper="Yu et al. 2023, RLHF-V (Dense Direct Preference Optimization, DDPO), arXiv 2312.00849",
    needs=("reference", "token_logps"),
    aliases=("ddpo",),
)
def dense_dpo(
    batch: PairBatch, beta: float = 0.5, gamma: float = 5.0, average: bool = True
) -> tuple[Tensor, dict[str, Tensor]]:
    """Dense DPO: DPO with the sequence score replaced by a weighted one that stresses corrected segments.

    score(y) = (1/N)·[Σ_{t∈y_u} log π(y_t) + γ·Σ_{t∈y_c} log π(y_t)], N = |y_u| + γ·|y_c| (``average``;
    otherwise the weighted sum), for π_θ and π_ref alike; L = -log σ(β·[(s_θ(y_w) - s_ref(y_w)) -
    (s_θ(y_l) - s_ref(y_l))]). Span labels: y_w is a human correction of y_l; ``Record.spans`` mark the
    changed segments of both — the corrected text in y_w and the replaced (e.g. hallucinated) text in
    y_l; any span counts (its label and weight are ignored), a token is "changed" (y_c) when its span
    token weight is > 0, the rest is y_u. γ = 5 (RLHF-V; β = 0.5 is our recall of its setting, unverified); γ = 1 is length-normalised DPO.
    Checked: RLHF-V/RLAIF-V muffin/train/trainers.py `compute_weighted_logp` and `get_seg_weight`
    (weight `dpo_token_weight` on diff tokens of both responses, 1 elsewhere; `dpo_use_average`).
    """
    rewards = []
    for side in (batch.chosen, batch.rejected):
        logp, mask = token_fields(side, "dense_dpo")
        if side.ref_token_logps is None:
            raise ValueError("dense_dpo needs per-token reference log-probs (engine needs 'reference')")
        changed = side.token_weights if side.token_weights is not None else torch.zeros_like(logp)
        weights = torch.where(changed[..., : logp.shape[-1]] > 0, gamma, 1.0).to(logp.dtype)
        policy = _weighted_logps(logp, mask, weights, average)
        reference = _weighted_logps(side.ref_token_logps, mask, weights, average)
        rewards.append(policy - reference)
    margin = rewards[0] - rewards[1]
    return -F.logsigmoid(beta * margin), _pair_metrics(batch, beta * rewards[0], beta * rewards[1])


# --------------------------------------------------------------------------------------- T-REG
T_REG_BETTER, T_REG_WORSE = "treg_better", "treg_worse"


def t_reg_prepare(
    records: list[Record],
    better_prompt: str = "(Give the most helpful, honest and harmless answer.)\n",
    worse_prompt: str = "(Give an unhelpful, dishonest or harmful answer.)\n",
) -> list[Record]:
    """Each pair (best and worst of a ranking, chosen first) gets four auxiliary scorings of the same two
    completions: under the "better" contrastive instruction (role ``treg_better``) and the "worse" one
    (role ``treg_worse``), as context prefixes. Their token log-prob difference is the self-generated
    token reward."""
    out = []
    for n, record in enumerate(records):
        if record.ranking is None:
            raise RecordError("T-REG needs preference pairs", where(record, n), "use pairs or rankings")
        order = sorted(range(record.k), key=lambda i: (record.ranking[i], i))
        w, lose = order[0], order[-1]
        if record.ranking[w] == record.ranking[lose]:
            continue
        pair = [record.completions[w], record.completions[lose]]
        out.append(
            Record(
                record.prompt,
                pair * 3,
                ranking=[0, 1, 0, 1, 0, 1],
                weight=record.weight,
                id=record.id,
                source=record.source,
                annotator=record.annotator,
                meta=dict(record.meta),
                roles=["", "", T_REG_BETTER, T_REG_BETTER, T_REG_WORSE, T_REG_WORSE],
                context_prefixes=[None, None, better_prompt, better_prompt, worse_prompt, worse_prompt],
            )
        )
    return out


def _token_rewards(batch: PairBatch, column: int, side: Scores) -> Tensor:
    if T_REG_BETTER in batch.aux and T_REG_WORSE in batch.aux:
        better, _ = token_fields(batch.aux[T_REG_BETTER], "t_reg")
        worse, _ = token_fields(batch.aux[T_REG_WORSE], "t_reg")
        return (better[:, column] - worse[:, column]).detach()
    if "token_rewards" in side.extra:
        return side.extra["token_rewards"].detach()
    raise ValueError(
        "t_reg needs token rewards: use its prepare hook (contrastive-prompt scorings, roles treg_better/"
        "treg_worse) or provide Scores.extra['token_rewards'] [P, T]"
    )


@objective(
    "t_reg",
    family="token_level",
    feedback="pairs",
    paper="Zhou et al. 2024, T-REG: Preference Optimization with Token-Level Reward Regularization, arXiv 2412.02685",
    needs=("reference", "token_logps"),
    prepare=t_reg_prepare,
)
def t_reg(
    batch: PairBatch,
    beta: float = 0.1,
    alpha: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """T-REG: L = L_DPO + α·½·(L_reg(y_w) + L_reg(y_l)), with self-generated token rewards as a regulariser.

    Token reward r_t = sg(log π_θ(y_t | x, c⁺, y_<t) - log π_θ(y_t | x, c⁻, y_<t)) from contrastive
    instructions c⁺/c⁻ (the policy scores its own tokens; :func:`t_reg_prepare` lays the four scorings
    out as auxiliary completions), normalised r̂_t = r_t / mean_t |r_t|. The implicit token rewards
    β·ρ_t = β·(log π_θ(y_t) - log π_ref(y_t)) are pulled to agree with r̂: L_reg(y) = -log σ(β·Σ_t r̂_t·ρ_t).
    Alternatively precomputed rewards r_t can come in Scores.extra['token_rewards'] [P, T] (per completion).
    α = 0 is DPO. Unverified: the exact L_reg of the paper could not be read (wzhouad/T-REG not in the
    index); this regulariser is reconstructed from the abstract's description (agreement of implicit token
    rewards with contrastive-prompt token rewards).
    """
    margin = batch.chosen.logratios - batch.rejected.logratios
    loss = -F.logsigmoid(beta * margin)
    reg_terms = []
    for column, side in enumerate((batch.chosen, batch.rejected)):
        logp, mask = token_fields(side, "t_reg")
        rho = side.token_logratios
        r = _token_rewards(batch, column, side)[..., : logp.shape[-1]] * mask
        scale = r.abs().sum(-1) / mask.sum(-1).clamp(min=1)
        r_hat = r / scale.clamp(min=1e-8).unsqueeze(-1)
        reg_terms.append(-F.logsigmoid(beta * (r_hat * rho * mask).sum(-1)))
    reg = (reg_terms[0] + reg_terms[1]) / 2
    metrics = _pair_metrics(batch, beta * batch.chosen.logratios, beta * batch.rejected.logratios)
    metrics["t_reg/reg"] = reg.detach()
    return loss + alpha * reg, metrics


# --------------------------------------------------------------------------------------- MODPO
def _parse_weights(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(
            f"modpo: weights must be comma-separated numbers like '0.5,0.5', got '{text}'"
        ) from None
    if len(values) < 2 or values[0] <= 0 or any(v < 0 or not math.isfinite(v) for v in values):
        raise ValueError(f"modpo: weights need w0 > 0 and one weight >= 0 per margin reward, got '{text}'")
    return values


@objective(
    "modpo",
    family="token_level",
    feedback="pairs",
    paper="Zhou et al. 2023, Beyond One-Preference-Fits-All Alignment: Multi-Objective DPO, arXiv 2310.03708",
    needs=("reference",),
)
def modpo(
    batch: PairBatch, beta: float = 0.1, weights: str = "0.5,0.5", loss_type: str = "sigmoid"
) -> tuple[Tensor, dict[str, Tensor]]:
    """MODPO: L = -log σ((1/w₀)·[β·h - w_{1:}ᵀ(R(y_w) - R(y_l))]), h = ρ(y_w) - ρ(y_l).

    The pairs are the preference being trained (weight w₀); R = (R_1..R_{n-1}) are margin rewards of
    the other objectives, given per completion as named ratings (``scores``), taken in alphabetical order
    of their names, one weight each: ``weights`` = "w0,w1,...". ``loss_type`` ``hinge`` uses
    max(0, 1 - logits). Sweep w on the simplex to trace the Pareto front; w = (1, 0, ...) is DPO.
    Checked: ZHZisZZ/modpo src/trainer/modpo_trainer.py `MODPOTrainer.modpo_loss`.
    """
    if loss_type not in ("sigmoid", "hinge"):
        raise ValueError(f"modpo: loss_type must be sigmoid or hinge, got '{loss_type}'")
    w = _parse_weights(weights)
    rw_, rl_ = batch.chosen.ratings, batch.rejected.ratings
    if rw_ is None or rw_.shape[-1] != len(w) - 1:
        have = 0 if rw_ is None else rw_.shape[-1]
        raise ValueError(
            f"modpo: weights '{weights}' give {len(w) - 1} margin reward(s) but the data carries {have} "
            "named rating(s) per completion; give one weight after w0 per rating (alphabetical order)"
        )
    if torch.isnan(rw_).any() or torch.isnan(rl_).any():
        raise ValueError("modpo: some completions lack a margin reward rating (NaN in 'scores')")
    w_rest = torch.tensor(w[1:], dtype=rw_.dtype, device=rw_.device)
    chosen = (beta * batch.chosen.logratios - rw_ @ w_rest) / w[0]
    rejected = (beta * batch.rejected.logratios - rl_ @ w_rest) / w[0]
    logits = chosen - rejected
    loss = -F.logsigmoid(logits) if loss_type == "sigmoid" else torch.relu(1 - logits)
    return loss, _pair_metrics(batch, chosen, rejected)


# ---------------------------------------------------------------------- dynamic reward scaling
@objective(
    "dynamic_reward_scaling",
    family="token_level",
    feedback="pairs",
    paper="Zhang et al. 2025, MM-RLHF: The Next Step Forward in Multimodal LLM Alignment, arXiv 2502.10391",
    needs=("reference",),
)
def dynamic_reward_scaling(
    batch: PairBatch, beta: float = 0.1, w: float = 0.5, k: float = 0.5
) -> tuple[Tensor, dict[str, Tensor]]:
    """DPO with a per-pair β from the reward-model margin: β(δ) = β₀·(1 + w·(1 - e^{-k·δ})).

    δ = r(y_w) - r(y_l) is the pair's margin (``PairBatch.margin``: the record's ``meta.margin`` or the
    gap of its single rating). Confident pairs get a larger β, bounded by β₀(1 + w); β is detached and
    clamped at 1e-3 like the reference code. L = -log σ(β(δ)·h), h = ρ(y_w) - ρ(y_l); w = 0 is DPO.
    Checked: the MM-RLHF DPO trainer as published in julyanghar/MM-RLHF trl/trainer/dpo_trainer.py
    (`beta_used = beta·(1 + ls_factor_weight·ls_factor)`, clamp 1e-3; ls_factor is precomputed per sample
    in the data). The factor's form 1 - e^{-kδ} and w = k = 0.5 are from the paper as recalled (unverified).
    """
    if batch.margin is None or torch.isnan(batch.margin).any():
        raise ValueError(
            "dynamic_reward_scaling needs a reward margin per pair: give records a single rating per "
            "completion in 'scores' (the reward-model score) or meta.margin"
        )
    delta = batch.margin.to(batch.chosen.logps.dtype)
    beta_pair = (beta * (1 + w * (1 - torch.exp(-k * delta)))).clamp(min=1e-3).detach()
    h = batch.chosen.logratios - batch.rejected.logratios
    metrics = _pair_metrics(batch, beta_pair * batch.chosen.logratios, beta_pair * batch.rejected.logratios)
    metrics["beta"] = beta_pair
    return -F.logsigmoid(beta_pair * h), metrics
