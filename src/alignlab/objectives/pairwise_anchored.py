"""Pairwise objectives that also anchor each response's own log-ratio ρ(y), not only the margin h.

Section B of METHODS.md: nca, exo, apo_zero, apo_down, sppo_hard. Unlike dpo these are not invariant to
adding a constant to both ρ(y_w) and ρ(y_l): they control absolute likelihoods (or, for exo, the shape of
the pair distribution). ρ(y) = log π_θ(y|x) − log π_ref(y|x), summed over completion tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.pairwise import check_beta, margin
from alignlab.objectives.registry import objective
from alignlab.objectives.views import PairBatch


@objective(
    "nca",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Chen et al. 2024, Noise Contrastive Alignment of Language Models with Explicit Rewards, arXiv 2402.05369",
    aliases=("nca_pair",),
)
def nca(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """Noise Contrastive Alignment (pairwise): L = −log σ(β·ρ_w) − ½·log σ(−β·ρ_w) − ½·log σ(−β·ρ_l).

    Optimises absolute implicit rewards β·ρ, so the chosen likelihood is not driven down with the rejected
    one (a failure mode of dpo). Default β = 0.1 (TRL).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="nca_pair").
    """
    check_beta("nca", beta)
    chosen, rejected = beta * batch.chosen.logratios, beta * batch.rejected.logratios
    return -F.logsigmoid(chosen) - 0.5 * F.logsigmoid(-chosen) - 0.5 * F.logsigmoid(-rejected)


@objective(
    "exo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Ji et al. 2024, Towards Efficient Exact Optimization of Language Model Alignment (EXO), arXiv 2402.00856",
    aliases=("exo_pair",),
)
def exo(batch: PairBatch, beta: float = 0.1, epsilon: float = 1e-3) -> Tensor:
    """EXO (pairwise): L = KL(Bern(σ(β·h)) ‖ Bern(1−ε)) = σ(βh)·[log σ(βh) − log(1−ε)] + σ(−βh)·[log σ(−βh) − log ε].

    Mode-seeking: minimum 0 exactly at β·h = log((1−ε)/ε), where the gradient vanishes. ε is the label
    smoothing of the target pair distribution; it must be in (0, 1) (ε = 0 gives log 0; TRL's current code
    would produce inf there, TRL's old code silently used 1e-3). Default ε = 1e-3 (TRL docs).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="exo_pair", paper Eq. 16).
    """
    check_beta("exo", beta)
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"exo: epsilon must lie in (0, 1) (log ε appears in the loss), got {epsilon}")
    z = beta * margin(batch)
    log_q_w, log_q_l = F.logsigmoid(z), F.logsigmoid(-z)
    return log_q_w.exp() * (log_q_w - math.log1p(-epsilon)) + log_q_l.exp() * (log_q_l - math.log(epsilon))


@objective(
    "apo_zero",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="D'Oosterlinck et al. 2024, Anchored Preference Optimization and Contrastive Revisions (APO), "
    "arXiv 2408.06266",
)
def apo_zero(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """APO-zero: L = [1 − σ(β·ρ_w)] + σ(β·ρ_l) (paper Eq. 7).

    For data whose chosen answers are better than the model's own outputs: raises ρ_w and lowers ρ_l
    independently. Not the Accelerated Preference Optimization of He et al. 2024.
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="apo_zero").
    """
    check_beta("apo_zero", beta)
    return (1.0 - torch.sigmoid(beta * batch.chosen.logratios)) + torch.sigmoid(
        beta * batch.rejected.logratios
    )


@objective(
    "apo_down",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="D'Oosterlinck et al. 2024, Anchored Preference Optimization and Contrastive Revisions (APO), "
    "arXiv 2408.06266",
)
def apo_down(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """APO-down: L = σ(β·ρ_w) + [1 − σ(β·h)] (paper Eq. 8).

    For data whose chosen answers are worse than the model's own outputs: lowers the chosen likelihood
    and the rejected one more.
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="apo_down").
    """
    check_beta("apo_down", beta)
    return torch.sigmoid(beta * batch.chosen.logratios) + (1.0 - torch.sigmoid(beta * margin(batch)))


@objective(
    "sppo_hard",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Wu et al. 2024, Self-Play Preference Optimization for Language Model Alignment (SPPO), arXiv 2405.00675",
)
def sppo_hard(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """SPPO with hard labels: L = (ρ_w − 1/(2β))² + (ρ_l + 1/(2β))².

    The paper's (soft, online) loss Σ_y (ρ(y) − η·(P̂(y ≻ π_t) − ½))² with P̂(y_w ≻ π_t) = 1 and
    P̂(y_l ≻ π_t) = 0, η = 1/β. Unique minimiser ρ_w = 1/(2β), ρ_l = −1/(2β). Default β = 0.1 (targets ±5).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="sppo_hard", 0.5/β).
    """
    check_beta("sppo_hard", beta)
    target = 0.5 / beta
    return (batch.chosen.logratios - target) ** 2 + (batch.rejected.logratios + target) ** 2
