"""Metrics logged every step for every objective, with TRL's names (trl/trainer/dpo_trainer.py `_compute_loss`).

For a pair batch: ``logps/chosen``, ``logps/rejected`` (mean summed log-prob), and when the objective has a
temperature (``beta``, or IPO's ``tau``) or a reference model: ``rewards/chosen`` = mean β·ρ(y_w),
``rewards/rejected`` = mean β·ρ(y_l), ``rewards/margins`` = mean (β·ρ(y_w) − β·ρ(y_l)), ``rewards/accuracies``
= fraction of pairs with β·ρ(y_w) > β·ρ(y_l) strictly. ρ(y) = log π_θ(y) − log π_ref(y), or log π_θ(y) without a
reference (as TRL's CPO/ORPO trainers log β·log π). β defaults to 1 when the objective has none.

``logratios/mean``: the mean over the batch's completions of ρ(y) = log π_θ(y) − log π_ref(y) (summed over
the completion's tokens). The completions come from the data, not from π_θ, so this is NOT a KL: it is a drift
diagnostic and is usually negative (DPO lowers the log-probs of chosen and rejected alike). Present only when
reference log-probs are. It was logged as ``kl`` before 2026-12 (docs/metrics.md); a KL of the policy from
its reference is measured on its own samples (``alignlab.eval.kl``, the quickstart's ``dpo.kl``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.views import ListBatch, PairBatch, PointBatch

LOGRATIO_MEAN = "logratios/mean"  # named "kl" before 2026-12; it is not a KL (module docstring)


def _temperature(params: dict[str, Any]) -> float | None:
    for key in ("beta", "tau"):
        value = params.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def standard_metrics(batch: PairBatch | ListBatch | PointBatch, params: dict[str, Any]) -> dict[str, Tensor]:
    """The standard metrics of one batch (detached 0-dim tensors); see the module docstring."""
    with torch.no_grad():
        if isinstance(batch, PairBatch):
            return _pair_metrics(batch, params)
        items = batch.items
        logps = items.logps[batch.mask] if isinstance(batch, ListBatch) else items.logps
        out = {"logps/mean": logps.mean()}
        if items.ref_logps is not None:
            ref = items.ref_logps[batch.mask] if isinstance(batch, ListBatch) else items.ref_logps
            out[LOGRATIO_MEAN] = (logps - ref).mean()
        return out


def _pair_metrics(batch: PairBatch, params: dict[str, Any]) -> dict[str, Tensor]:
    chosen, rejected = batch.chosen, batch.rejected
    out = {"logps/chosen": chosen.logps.mean(), "logps/rejected": rejected.logps.mean()}
    has_reference = chosen.ref_logps is not None and rejected.ref_logps is not None
    beta = _temperature(params)
    if beta is not None or has_reference:
        scale = 1.0 if beta is None else beta
        rewards_chosen, rewards_rejected = scale * chosen.logratios, scale * rejected.logratios
        out["rewards/chosen"] = rewards_chosen.mean()
        out["rewards/rejected"] = rewards_rejected.mean()
        out["rewards/margins"] = (rewards_chosen - rewards_rejected).mean()
        out["rewards/accuracies"] = (rewards_chosen > rewards_rejected).to(rewards_chosen.dtype).mean()
    if has_reference:
        out[LOGRATIO_MEAN] = torch.cat([chosen.logratios, rejected.logratios]).mean()
    return out


def pair_reward_metrics(
    rewards_chosen: Tensor,
    rewards_rejected: Tensor,
    logps_chosen: Tensor | None = None,
    logps_rejected: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-pair TRL-named reward metrics (detached; the loop averages them): ``rewards/chosen``,
    ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies`` (strictly greater), and the summed
    log-probs ``logps/chosen``, ``logps/rejected`` when given. For objectives whose implicit reward is not
    the standard β·ρ (they return these to override the standard metrics)."""
    rw, rl = rewards_chosen.detach(), rewards_rejected.detach()
    out = {
        "rewards/chosen": rw,
        "rewards/rejected": rl,
        "rewards/margins": rw - rl,
        "rewards/accuracies": (rw > rl).float(),
    }
    if logps_chosen is not None and logps_rejected is not None:
        out["logps/chosen"] = logps_chosen.detach()
        out["logps/rejected"] = logps_rejected.detach()
    return out
