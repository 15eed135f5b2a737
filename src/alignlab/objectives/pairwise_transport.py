"""Alignment via optimal transport (AOT): DPO's logistic loss on the *sorted* margins of a batch.

AOT asks the distribution of the policy's rewards on chosen answers to dominate that on rejected ones
(first-order stochastic dominance). In one dimension the optimal transport plan between two empirical
distributions matches their sorted samples, so the loss compares the i-th smallest value of one side
with the i-th smallest of the other. The sort couples the pairs of a batch, and the batch is the step's
global batch: per-example ``step_statistics`` gather every pair's values over the micro-batches and
processes, the fold sorts them once and gives each pair the order statistic it is matched with (its
``step_results``); each pair's loss term then carries the gradient that the sorted loss gives it, so the
step's loss and gradients do not depend on how it is cut (TRL sorts over each device's micro-batch: the
same with one micro-batch per step on one device). The loss of the order statistic i is reported on the
pair holding the i-th smallest value (not on pair i, as TRL's loss vector is). Evaluation sorts within
each evaluation chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.pairwise import check_beta
from alignlab.objectives.registry import objective
from alignlab.objectives.state import StepStatistics
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


def _ranks(values: Tensor) -> Tensor:
    """Each value's place in the ascending order (ties by position, as a stable sort)."""
    order = torch.argsort(values, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(order))
    return ranks


def _aot_rows(batch: PairBatch) -> Tensor:
    """[u, u_ref] per pair: u = log π_θ(y_w) − log π_θ(y_l), u_ref the same under π_ref."""
    u = batch.chosen.logps - batch.rejected.logps
    return torch.stack([u, batch.chosen.ref_logps - batch.rejected.ref_logps], 1)


def _aot_match(state: dict, rows: Tensor) -> Tensor:
    """For each pair, the sorted u_ref at its u's place: sort(u_ref)[rank(u_j)]."""
    return torch.sort(rows[:, 1]).values[_ranks(rows[:, 0])][:, None]


@objective(
    "aot",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper=PAPER,
    step_statistics=StepStatistics(_aot_rows, _aot_match, size=2, per_example=True),
)
def aot(
    batch: PairBatch, step_results: Tensor | None = None, beta: float = 0.1, label_smoothing: float = 0.0
) -> Tensor:
    """AOT (paired): L_i = −(1−ε)·log σ(β·δ_i) − ε·log σ(−β·δ_i), δ = sort(u) − sort(u_ref).

    u = log π_θ(y_w|x) − log π_θ(y_l|x) and u_ref the same under π_ref, each sorted ascending over the
    step's global batch; loss i belongs to the i-th order statistic, reported on the pair j holding the
    i-th smallest u: L_j = ℓ(u_j − sort(u_ref)[rank(u_j)]), whose gradient is the sorted loss's (u_ref is
    constant). ε: TRL's ``label_smoothing``. TRL ``loss_type="aot"``.
    Checked: huggingface/trl 1.16 trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="aot": sorts
    chosen_logps − rejected_logps and the reference's, dim 0); paper §3 (AOT paired, Eq. for one-dimensional
    OT by sorting).
    """
    _check("aot", beta, label_smoothing)
    u = batch.chosen.logps - batch.rejected.logps
    if step_results is None:  # evaluation: this batch sorted on its own
        step_results = _aot_match({}, _aot_rows(batch).detach())
    return _smoothed(u - step_results[:, 0].to(u), beta, label_smoothing)


def _aot_unpaired_rows(batch: PairBatch) -> Tensor:
    """[ρ_w, ρ_l] per pair (implicit log-ratios of the chosen and the rejected answer)."""
    return torch.stack([batch.chosen.logratios, batch.rejected.logratios], 1)


def _aot_unpaired_match(state: dict, rows: Tensor) -> Tensor:
    """For each pair j: [sort(ρ_l)[rank(ρ_w_j)], sort(ρ_w)[rank(ρ_l_j)]], the partners of its two values."""
    rho_w, rho_l = rows[:, 0], rows[:, 1]
    partner_of_w = torch.sort(rho_l).values[_ranks(rho_w)]
    partner_of_l = torch.sort(rho_w).values[_ranks(rho_l)]
    return torch.stack([partner_of_w, partner_of_l], 1)


@objective(
    "aot_unpaired",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper=PAPER,
    aliases=("aot_pair",),
    step_statistics=StepStatistics(_aot_unpaired_rows, _aot_unpaired_match, size=2, per_example=True),
)
def aot_unpaired(
    batch: PairBatch, step_results: Tensor | None = None, beta: float = 0.1, label_smoothing: float = 0.0
) -> Tensor:
    """AOT (unpaired): L_i = −(1−ε)·log σ(β·δ_i) − ε·log σ(−β·δ_i), δ = sort(ρ_w) − sort(ρ_l).

    ρ_w = log π_θ(y_w|x) − log π_ref(y_w|x) over the batch's chosen answers and ρ_l over its rejected ones,
    each sorted ascending over the step's global batch: the chosen rewards' distribution should dominate the
    rejected ones', pair membership unused. The term of order statistic i (both values move) is reported
    on the pair j holding the i-th smallest ρ_w: L_j = ℓ(ρ_w_j − sort(ρ_l)[rank(ρ_w_j)]) plus a zero-valued
    term ℓ(sort(ρ_w)[rank(ρ_l_j)] − ρ_l_j) − sg(same) carrying ρ_l_j's gradient, so the sum and every
    gradient are the sorted loss's. TRL ``loss_type="aot_unpaired"``; older TRL releases called this loss ``aot_pair``
    (kept as an alias).
    Checked: huggingface/trl 1.16 trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="aot_unpaired": sorts
    chosen_logratios and rejected_logratios separately); paper §3 (AOT unpaired).
    """
    _check("aot_unpaired", beta, label_smoothing)
    rho_w, rho_l = batch.chosen.logratios, batch.rejected.logratios
    if step_results is None:  # evaluation: this batch sorted on its own
        step_results = _aot_unpaired_match({}, _aot_unpaired_rows(batch).detach())
    partners = step_results.to(rho_w)
    value = _smoothed(rho_w - partners[:, 0], beta, label_smoothing)
    gradient_of_l = _smoothed(partners[:, 1] - rho_l, beta, label_smoothing)
    return value + gradient_of_l - gradient_of_l.detach()
