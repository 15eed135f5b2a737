"""Pairwise losses found by an LLM-driven search over objective functions (DiscoPOP)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.pairwise import check_beta
from alignlab.objectives.registry import objective
from alignlab.objectives.views import PairBatch


@objective(
    "discopop",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Chris Lu et al. 2024, Discovering Preference Optimization Algorithms with and for Large Language "
    "Models (DiscoPOP, the log-ratio modulated loss), arXiv 2406.08414",
)
def discopop(batch: PairBatch, beta: float = 0.1, tau: float = 0.05) -> Tensor:
    """DiscoPOP (LRML): L = (1 − σ(z/τ))·(−log σ(z)) + σ(z/τ)·exp(−z), z = β·h, h = ρ(y_w) − ρ(y_l).

    A blend of DPO's logistic loss (weight 1 − σ(z/τ), dominant for z < 0) and an exponential loss (weight
    σ(z/τ), dominant once the pair is ranked right); at z = 0 it is (log 2 + 1)/2. τ = 0.05 is the paper's
    recommended temperature (TRL ``discopop_tau``), β = 0.1 TRL's default (the paper used β = 0.05).
    TRL ``loss_type="discopop"``.
    Checked: paper Eq. 5 (log-ratio modulated loss); huggingface/trl 1.16 trl/trainer/dpo_trainer.py
    `_compute_loss` (loss_type="discopop": logits = β·delta_score, modulation σ(logits/discopop_tau)).
    """
    check_beta("discopop", beta)
    if tau <= 0:
        raise ValueError(f"discopop: tau must be > 0 (it sets how sharply the two losses switch), got {tau}")
    z = beta * (batch.chosen.logratios - batch.rejected.logratios)
    modulation = torch.sigmoid(z / tau)
    return (1 - modulation) * -F.logsigmoid(z) + modulation * torch.exp(-z)
