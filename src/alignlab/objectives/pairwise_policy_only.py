"""Pairwise objectives without a reference model: simpo, orpo, cpo (section B of METHODS.md).

Each carries its own likelihood term or length normalisation as its paper defines it (not through the
modifiers). NLL(y_w) below is the token-mean cross-entropy of the chosen response, −log π_θ(y_w|x)/|y_w|.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.registry import objective
from alignlab.objectives.views import PairBatch


def _smoothed_logistic(z: Tensor, label_smoothing: float) -> Tensor:
    """−(1−ε)·log σ(z) − ε·log σ(−z)."""
    return -(1.0 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)


def _check_smoothing(name: str, label_smoothing: float) -> None:
    if not 0.0 <= label_smoothing <= 0.5:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 0.5], got {label_smoothing}")


def log1mexp(x: Tensor) -> Tensor:
    """log(1 − e^x) for x < 0, stable at both ends (Mächler 2012): expm1 near 0, log1p far from it."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


@objective(
    "simpo",
    family="pairwise",
    feedback="pairs",
    needs=(),
    paper="Meng et al. 2024, SimPO: Simple Preference Optimization with a Reference-Free Reward, arXiv 2405.14734",
)
def simpo(
    batch: PairBatch,
    beta: float = 2.0,
    gamma_beta_ratio: float = 0.25,
    label_smoothing: float = 0.0,
    sft_weight: float = 0.0,
) -> Tensor:
    """SimPO: L = −log σ(β·ℓ̄(y_w) − β·ℓ̄(y_l) − γ), ℓ̄(y) = log π_θ(y|x)/|y|, γ = β·gamma_beta_ratio.

    Reference-free, length-normalised reward with a target margin γ. Defaults are the official code's
    (β = 2.0, γ/β = 0.25, so γ = 0.5); recipes use β up to 10. ``label_smoothing`` (default 0) gives the
    official code's conservative form; ``sft_weight`` (default 0) adds sft_weight·NLL(y_w) per example (the
    official code uses a batch token mean). Note TRL's CPOTrainer(loss_type="simpo") takes absolute γ and
    adds an NLL term by default (cpo_alpha = 1).
    Checked: princeton-nlp/SimPO scripts/simpo_trainer.py `simpo_loss` (average_log_prob=True) and
    `compute_loss` (sft_weight); huggingface/trl trl/experimental/cpo/cpo_trainer.py (simpo branch).
    """
    if beta <= 0:
        raise ValueError(f"simpo: beta must be > 0, got {beta}")
    _check_smoothing("simpo", label_smoothing)
    chosen, rejected = batch.chosen.mean_logps, batch.rejected.mean_logps
    loss = _smoothed_logistic(beta * (chosen - rejected - gamma_beta_ratio), label_smoothing)
    if sft_weight:
        loss = loss - sft_weight * chosen
    return loss


@objective(
    "orpo",
    family="pairwise",
    feedback="pairs",
    needs=(),
    paper="Hong et al. 2024, ORPO: Monolithic Preference Optimization without Reference Model, arXiv 2403.07691",
)
def orpo(batch: PairBatch, beta: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """ORPO: L = NLL(y_w) − λ·log σ(log odds(y_w) − log odds(y_l)), λ = ``beta`` (TRL's name).

    P(y) = exp(ℓ̄(y)) with ℓ̄ the mean token log-prob; log odds(y) = ℓ̄(y) − log(1 − exp(ℓ̄(y))), computed
    with a stable log1mexp. λ = 0 is SFT on the chosen response. Default λ = 0.1 (TRL; the paper used
    0.1 and 0.25).
    Checked: huggingface/trl trl/experimental/orpo/orpo_trainer.py `odds_ratio_loss` (log1mexp;
    `loss = policy_nll_loss − losses.mean()`, average_log_prob=True).
    """
    chosen, rejected = batch.chosen.mean_logps, batch.rejected.mean_logps
    # Clamp just below 0: a mean log-prob of exactly 0 (P = 1) has infinite odds.
    chosen_c, rejected_c = chosen.clamp(max=-1e-12), rejected.clamp(max=-1e-12)
    log_odds = (chosen_c - rejected_c) - (log1mexp(chosen_c) - log1mexp(rejected_c))
    odds_term = F.logsigmoid(log_odds)
    loss = -chosen - beta * odds_term
    return loss, {"log_odds_ratio": log_odds.detach(), "log_odds_chosen": odds_term.detach()}


@objective(
    "cpo",
    family="pairwise",
    feedback="pairs",
    needs=(),
    paper="Xu et al. 2024, Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in "
    "Machine Translation, arXiv 2401.08417",
    renamed={"alpha": "cpo_alpha"},
)
def cpo(batch: PairBatch, beta: float = 0.1, cpo_alpha: float = 1.0, label_smoothing: float = 0.0) -> Tensor:
    """CPO: L = −log σ(β·[log π_θ(y_w|x) − log π_θ(y_l|x)]) + α·NLL(y_w) (summed log-probs in the margin).

    DPO with a uniform reference (the reference-free limit) plus a behaviour-cloning term on the chosen
    response. Defaults β = 0.1, α = ``cpo_alpha`` = 1.0 (TRL's `cpo_alpha`, the same name);
    ``label_smoothing`` gives the conservative form. The old name ``alpha`` is an error naming the new one:
    in TRL's CPOConfig ``alpha`` is AlphaPO's reward-shape parameter, which this objective does not have.
    NLL(y_w) is per example here; TRL averages the cross-entropy over all chosen tokens of the batch.
    Checked: huggingface/trl trl/experimental/cpo/cpo_trainer.py `cpo_loss` (sigmoid branch) and
    `get_batch_loss_metrics` (`loss = losses.mean() + cpo_alpha·nll_loss`).
    """
    if beta <= 0:
        raise ValueError(f"cpo: beta must be > 0, got {beta}")
    _check_smoothing("cpo", label_smoothing)
    z = beta * (batch.chosen.logps - batch.rejected.logps)
    return _smoothed_logistic(z, label_smoothing) - cpo_alpha * batch.chosen.mean_logps
