"""Alignment via optimal transport (AOT): DPO's logistic loss on the *sorted* margins of a batch.

AOT asks the distribution of the policy's rewards on chosen answers to dominate that on rejected ones
(first-order stochastic dominance). In one dimension the optimal transport plan between two empirical
distributions matches their sorted samples, so the loss compares the i-th smallest value of one side
with the i-th smallest of the other. The sort couples the pairs of one batch: the loss of a batch depends
on which pairs it holds (like TRL, which sorts over each device's micro-batch), so set
``train.micro_batch_size`` equal to ``train.batch_size`` when the whole batch should be sorted at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.pairwise import check_beta
from alignlab.objectives.registry import objective
from alignlab.objectives.views import PairBatch

PAPER = (
    "Melnyk et al. 2024, Distributional Preference Alignment of LLMs via Optimal Transport (AOT), "
    "arXiv 2406.05882"
)


def _smoothed(delta: Tensor, beta: float, label_smoothing: float) -> Tensor:
    return -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)


def _check(name: str, beta: float, label_smoothing: float) -> None:
    check_beta(name, beta)
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 0.5), got {label_smoothing}")


@objective("aot", family="pairwise", feedback="pairs", needs=("reference",), paper=PAPER)
def aot(batch: PairBatch, beta: float = 0.1, label_smoothing: float = 0.0) -> Tensor:
    """AOT (paired): L_i = −(1−ε)·log σ(β·δ_i) − ε·log σ(−β·δ_i), δ = sort(u) − sort(u_ref).

    u = log π_θ(y_w|x) − log π_θ(y_l|x) and u_ref the same under π_ref, each sorted ascending over the
    batch's pairs; loss i belongs to the i-th order statistic, not to pair i. ε: TRL's
    ``label_smoothing``. TRL ``loss_type="aot"``.
    Checked: huggingface/trl 1.16 trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="aot": sorts
    chosen_logps − rejected_logps and the reference's, dim 0); paper §3 (AOT paired, Eq. for one-dimensional
    OT by sorting).
    """
    _check("aot", beta, label_smoothing)
    u = batch.chosen.logps - batch.rejected.logps
    u_ref = batch.chosen.ref_logps - batch.rejected.ref_logps
    delta = torch.sort(u, dim=0).values - torch.sort(u_ref, dim=0).values
    return _smoothed(delta, beta, label_smoothing)


@objective(
    "aot_unpaired",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper=PAPER,
    aliases=("aot_pair",),
)
def aot_unpaired(batch: PairBatch, beta: float = 0.1, label_smoothing: float = 0.0) -> Tensor:
    """AOT (unpaired): L_i = −(1−ε)·log σ(β·δ_i) − ε·log σ(−β·δ_i), δ = sort(ρ_w) − sort(ρ_l).

    ρ_w = log π_θ(y_w|x) − log π_ref(y_w|x) over the batch's chosen answers and ρ_l over its rejected ones,
    each sorted ascending: the chosen rewards' distribution should dominate the rejected ones', pair
    membership unused. TRL ``loss_type="aot_unpaired"``; older TRL releases called this loss ``aot_pair``
    (kept as an alias).
    Checked: huggingface/trl 1.16 trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="aot_unpaired": sorts
    chosen_logratios and rejected_logratios separately); paper §3 (AOT unpaired).
    """
    _check("aot_unpaired", beta, label_smoothing)
    rho_w = torch.sort(batch.chosen.logratios, dim=0).values
    rho_l = torch.sort(batch.rejected.logratios, dim=0).values
    return _smoothed(rho_w - rho_l, beta, label_smoothing)
