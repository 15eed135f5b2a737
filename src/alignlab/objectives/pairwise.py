"""Offline pairwise objectives on the DPO margin h = ρ(y_w) − ρ(y_l), with ρ(y) = log π_θ(y|x) − log π_ref(y|x).

Section B of METHODS.md: dpo, ipo, hinge, slic, cdpo, rdpo (robust DPO), rdpo_length (R-DPO), dpop and the
f-DPO family. Anchored losses (nca, exo, apo_*, sppo_hard) are in ``pairwise_anchored.py``; losses without a
reference model (simpo, orpo, cpo) in ``pairwise_policy_only.py``. Log-probs are summed over completion tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.registry import objective
from alignlab.objectives.views import PairBatch


def margin(batch: PairBatch) -> Tensor:
    """h = ρ(y_w) − ρ(y_l) (summed log-ratios)."""
    return batch.chosen.logratios - batch.rejected.logratios


def check_beta(name: str, beta: float) -> None:
    """A clear error for β ≤ 0 (β scales the log-ratio margin of every DPO-style loss)."""
    if beta <= 0:
        raise ValueError(f"{name}: beta must be > 0 (it scales the log-ratio margin), got {beta}")


def _check_epsilon(name: str, epsilon: float, high: float, closed: bool) -> None:
    ok = 0.0 <= epsilon <= high if closed else 0.0 <= epsilon < high
    if not ok:
        bracket = "]" if closed else ")"
        raise ValueError(
            f"{name}: epsilon (assumed label-flip rate) must lie in [0, {high}{bracket}, got {epsilon}"
        )


@objective(
    "dpo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Rafailov et al. 2023, Direct Preference Optimization, arXiv 2305.18290",
    aliases=("sigmoid",),
)
def dpo(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """Direct Preference Optimization: L = −log σ(β·h), h = ρ(y_w) − ρ(y_l).

    The default choice for pairwise data with a reference model (the SFT model). β is the strength of the
    implicit KL constraint: small β lets the policy move far from π_ref. Default β = 0.1 (TRL default; the
    paper used 0.1 and 0.5). Under Bradley–Terry preferences the population minimiser is
    π_ref·exp(r/β)/Z.
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="sigmoid",
    −logsigmoid(β·delta_score) with token-summed log-ratios); ContextualAI/HALOs train/trainers.py DPOTrainer.
    """
    check_beta("dpo", beta)
    return -F.logsigmoid(beta * margin(batch))


@objective(
    "dpo_norm",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Lambert et al. 2024, Tülu 3: Pushing Frontiers in Open Language Model Post-Training "
    "(length-normalized DPO), arXiv 2411.15124",
    aliases=("sigmoid_norm",),
)
def dpo_norm(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """Length-normalised DPO: L = −log σ(β·h̄), h̄ = ρ(y_w)/|y_w| − ρ(y_l)/|y_l| (token-averaged log-ratios).

    DPO on the per-token mean log-ratio, so a long answer's margin does not grow with its length; the same
    as ``dpo`` with the ``length_norm`` modifier. Tülu 3 trains with it (β = 5 there, on this scale);
    default β = 0.1 (TRL). TRL ``loss_type="sigmoid_norm"`` (alias).
    Checked: huggingface/trl 1.16 trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="sigmoid_norm":
    chosen_scores / chosen token count − rejected_scores / rejected token count, then −logsigmoid(β·delta)).
    """
    check_beta("dpo_norm", beta)
    chosen, rejected = batch.chosen, batch.rejected
    h = chosen.logratios / chosen.lengths.clamp(min=1) - rejected.logratios / rejected.lengths.clamp(min=1)
    return -F.logsigmoid(beta * h)


@objective(
    "ipo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Azar et al. 2023, A General Theoretical Paradigm to Understand Learning from Human Preferences, "
    "arXiv 2310.12036",
)
def ipo(batch: PairBatch, tau: float = 0.1, ipo_normalize: bool = True) -> Tensor:
    """Identity Preference Optimization: L = (h̃ − 1/(2τ))².

    h̃ = ρ(y_w)/|y_w| − ρ(y_l)/|y_l| (token-averaged log-ratios, ``ipo_normalize=True``, the default of TRL and
    HALOs; TRL states the IPO authors confirmed the reported results used it) or the paper's Eq. 17 with
    summed log-ratios h (``ipo_normalize=False``). τ regularises: the target margin is 1/(2τ), finite even
    for deterministic preferences. Default τ = 0.1 (TRL `beta`, HALOs `tau`).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="ipo", divides by the
    completion token counts); ContextualAI/HALOs train/trainers.py IPOTrainer (length_normalized=True).
    """
    if tau <= 0:
        raise ValueError(f"ipo: tau must be > 0 (target margin is 1/(2·tau)), got {tau}")
    if ipo_normalize:
        chosen, rejected = batch.chosen, batch.rejected
        h = chosen.logratios / chosen.lengths.clamp(min=1) - rejected.logratios / rejected.lengths.clamp(
            min=1
        )
    else:
        h = margin(batch)
    return (h - 1.0 / (2.0 * tau)) ** 2


@objective(
    "hinge",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Liu et al. 2023, Statistical Rejection Sampling Improves Preference Optimization (RSO), arXiv 2309.06657",
)
def hinge(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """Hinge loss on the reference-normalised margin (RSO / SLiC family): L = max(0, 1 − β·h).

    The loss and its gradient are exactly zero once β·h ≥ 1: pairs already separated by 1/β stop
    contributing. Default β = 0.1 (TRL).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="hinge", relu(1 − β·delta)).
    """
    check_beta("hinge", beta)
    return torch.relu(1.0 - beta * margin(batch))


@objective(
    "slic",
    family="pairwise",
    feedback="pairs",
    needs=(),
    paper="Zhao et al. 2023, SLiC-HF: Sequence Likelihood Calibration with Human Feedback, arXiv 2305.10425",
)
def slic(batch: PairBatch, delta: float = 1.0, lambda_reg: float = 0.1) -> Tensor:
    """SLiC-HF: L = max(0, δ − log π_θ(y_w|x) + log π_θ(y_l|x)) − λ·log π_θ(y_w|x).

    Calibration hinge on summed policy log-probs (no reference model) plus a likelihood regulariser on
    the chosen response (HALOs' choice of target; the paper may use a separate SFT target instead).
    Defaults δ = 1.0, λ = 0.1 (HALOs `beta`, `lambda_coef`).
    Checked: ContextualAI/HALOs train/trainers.py SLiCTrainer.loss and config/loss/slic.yaml.
    """
    calibration = torch.relu(delta - batch.chosen.logps + batch.rejected.logps)
    return calibration - lambda_reg * batch.chosen.logps


@objective(
    "cdpo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Mitchell 2023, A note on DPO with noisy preferences & relationship to IPO (conservative DPO)",
)
def cdpo(batch: PairBatch, beta: float = 0.1, epsilon: float = 0.2) -> Tensor:
    """Conservative (label-smoothed) DPO: L = −(1−ε)·log σ(β·h) − ε·log σ(−β·h).

    For preference labels believed flipped with probability ε; the per-pair minimiser is the finite
    β·h* = log((1−ε)/ε). ε = 0 is dpo. Default ε = 0.2 (HALOs `epsilon`).
    Checked: ContextualAI/HALOs train/trainers.py CDPOTrainer.loss + config/loss/cdpo.yaml.
    """
    check_beta("cdpo", beta)
    _check_epsilon("cdpo", epsilon, 0.5, closed=True)
    z = beta * margin(batch)
    return -(1.0 - epsilon) * F.logsigmoid(z) - epsilon * F.logsigmoid(-z)


@objective(
    "rdpo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Chowdhury et al. 2024, Provably Robust DPO: Aligning Language Models with Noisy Feedback, arXiv 2403.00409",
    aliases=("robust",),
)
def rdpo(batch: PairBatch, beta: float = 0.1, epsilon: float = 0.1) -> Tensor:
    """Robust DPO: L = [−(1−ε)·log σ(β·h) + ε·log σ(−β·h)] / (1 − 2ε).

    An unbiased estimate of the clean DPO loss when labels flip with probability ε:
    (1−ε)·L(h) + ε·L(−h) = −log σ(β·h). Unbounded below per pair (slope −βε/(1−2ε) as h → ∞); training
    relies on averaging. ε ∈ [0, 0.5), default 0.1 (paper/TRL recommendation); ε = 0 is dpo.
    Not to be confused with R-DPO (`rdpo_length`).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py `_compute_loss` (loss_type="robust").
    """
    check_beta("rdpo", beta)
    _check_epsilon("rdpo", epsilon, 0.5, closed=False)
    z = beta * margin(batch)
    return (-(1.0 - epsilon) * F.logsigmoid(z) + epsilon * F.logsigmoid(-z)) / (1.0 - 2.0 * epsilon)


@objective(
    "rdpo_length",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Park et al. 2024, Disentangling Length from Quality in Direct Preference Optimization (R-DPO), "
    "arXiv 2403.19159",
)
def rdpo_length(batch: PairBatch, beta: float = 0.1, alpha: float = 0.01) -> Tensor:
    """R-DPO, length-regularised DPO: L = −log σ(β·h + α·(|y_w| − |y_l|)).

    Derivation (sign check): maximising E[r] − α·|y| − β·KL gives r(y) = β·ρ(y) + α·|y| + β·log Z, so the
    Bradley–Terry logit is β·h + α(|y_w| − |y_l|): preference explained by length is absorbed by the α
    term instead of the policy. |y| counts completion tokens. α = 0 (or equal lengths) is dpo. Default
    α = 0.01 (paper sweeps 0.005–0.05 at β = 0.1).
    Checked against the paper's Eq. 9 (as also tabulated in Meng et al. 2024, SimPO, Table 3).
    """
    check_beta("rdpo_length", beta)
    length_gap = batch.chosen.lengths - batch.rejected.lengths
    return -F.logsigmoid(beta * margin(batch) + alpha * length_gap)


@objective(
    "dpop",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Pal et al. 2024, Smaug: Fixing Failure Modes of Preference Optimisation with DPO-Positive, arXiv 2402.13228",
)
def dpop(batch: PairBatch, beta: float = 0.1, lambda_penalty: float = 50.0) -> Tensor:
    """DPO-Positive: L = −log σ(β·[h − λ·max(0, log π_ref(y_w|x) − log π_θ(y_w|x))]).

    Penalises the chosen likelihood falling below the reference (a DPO failure mode on pairs with small
    edit distance). Equals dpo whenever log π_θ(y_w) ≥ log π_ref(y_w). Default λ = 50 (paper's value).
    Checked against the paper's Eq. 3 (DPOP loss); λ = 50 from the paper's experiments.
    """
    check_beta("dpop", beta)
    drop = torch.relu(-batch.chosen.logratios)
    return -F.logsigmoid(beta * (margin(batch) - lambda_penalty * drop))


# ----------------------------------------------------------------------------------------- f-DPO
def _fdpo_loss(psi_chosen: Tensor, psi_rejected: Tensor, beta: float) -> Tensor:
    return -F.logsigmoid(beta * (psi_chosen - psi_rejected))


_FDPO_PAPER = "Wang et al. 2023, Beyond Reverse KL: Generalizing DPO with Diverse Divergence Constraints, arXiv 2309.16240"


@objective("fdpo_rkl", family="pairwise", feedback="pairs", needs=("reference",), paper=_FDPO_PAPER)
def fdpo_rkl(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """f-DPO, reverse KL: L = −log σ(β·[ψ(u_w) − ψ(u_l)]), ψ(u) = f′(u) = log u = ρ (identical to dpo).

    u = π_θ/π_ref = e^ρ. Checked: huggingface/trl trl/trainer/dpo_trainer.py (f_divergence_type="reverse_kl").
    """
    check_beta("fdpo_rkl", beta)
    return _fdpo_loss(batch.chosen.logratios, batch.rejected.logratios, beta)


@objective("fdpo_fkl", family="pairwise", feedback="pairs", needs=("reference",), paper=_FDPO_PAPER)
def fdpo_fkl(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """f-DPO, forward KL: L = −log σ(β·[ψ(u_w) − ψ(u_l)]), ψ(u) = −1/u = −e^{−ρ} (f′ = 1 − 1/u, constant dropped).

    ψ ≤ 0: mass-covering, pushes less hard on ratios already above the reference.
    Checked: huggingface/trl trl/trainer/dpo_trainer.py (f_divergence_type="forward_kl", −exp(−logratio)).
    """
    check_beta("fdpo_fkl", beta)
    return _fdpo_loss(-torch.exp(-batch.chosen.logratios), -torch.exp(-batch.rejected.logratios), beta)


@objective("fdpo_js", family="pairwise", feedback="pairs", needs=("reference",), paper=_FDPO_PAPER)
def fdpo_js(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """f-DPO, Jensen–Shannon: ψ(u) = log(2u/(1+u)) = log 2 + log σ(ρ); the log 2 cancels in the difference.

    Checked: huggingface/trl trl/trainer/dpo_trainer.py (f_divergence_type="js_divergence", logsigmoid(logratio)).
    """
    check_beta("fdpo_js", beta)
    return _fdpo_loss(F.logsigmoid(batch.chosen.logratios), F.logsigmoid(batch.rejected.logratios), beta)


@objective("fdpo_alpha", family="pairwise", feedback="pairs", needs=("reference",), paper=_FDPO_PAPER)
def fdpo_alpha(batch: PairBatch, beta: float = 0.1, alpha: float = 0.5) -> Tensor:
    """f-DPO, α-divergence (paper convention): ψ(u) = (1 − u^{−α})/α, so ψ(u_w) − ψ(u_l) = (u_l^{−α} − u_w^{−α})/α.

    α ∈ (0, 1); α → 0 recovers reverse KL (dpo). Default α = 0.5. TRL's current code writes
    ψ(u) = (u^{α′−1} − 1)/(α′ − 1), the same family with α′ = 1 − α (equal at the default 0.5); TRL's
    older code used the paper's convention. The exponent −α·ρ is clamped at 80 (as TRL does) so that
    u^{−α} stays finite in float32.
    Checked: huggingface/trl trl/trainer/dpo_trainer.py (f_divergence_type="alpha_divergence").
    """
    check_beta("fdpo_alpha", beta)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"fdpo_alpha: alpha must lie in (0, 1) (paper convention), got {alpha}")

    def psi(rho: Tensor) -> Tensor:
        return (1.0 - torch.exp(torch.clamp(-alpha * rho, max=80.0))) / alpha

    return _fdpo_loss(psi(batch.chosen.logratios), psi(batch.rejected.logratios), beta)
