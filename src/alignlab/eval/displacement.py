"""Likelihood displacement (Razin et al. 2024, arXiv 2410.08847): does preference training *lower* the likelihood
of the preferred responses, and where does the probability mass go?

Per pair i, from log-probabilities (summed over the response tokens) before and after training:
Δ⁺_i = log π_after(y⁺_i|x) − log π_before(y⁺_i|x), Δ⁻_i likewise. Displacement: Δ⁺_i < 0. Reported: the fraction of
displaced pairs, mean Δ⁺ and Δ⁻ (each with its SE), and — when next-token distributions at the first response
position are given — the tokens whose probability rose most (where the mass went, e.g. "Yes" when training
"No" ≻ "Never").

checked: Razin et al. 2024 abstract and §3–4 (the "No" ≻ "Never" → "Yes" example), unverified in code; the toy of
METHODS.md "likelihood_displacement" is reproduced in tests/eval/test_token_metrics.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignlab.eval.inputs import check_finite
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import MetricResult, mean_estimate, proportion_estimate


@register_metric(
    "likelihood_displacement",
    paper="Razin et al. 2024, Unintentional Unalignment: Likelihood Displacement in DPO (arXiv 2410.08847)",
    inputs="model",
    checked="Razin et al. 2024 §3-4 (unverified in code); their toy example reproduced in the tests",
)
def likelihood_displacement(
    *,
    logp_chosen_before: Sequence[float],
    logp_chosen_after: Sequence[float],
    logp_rejected_before: Sequence[float],
    logp_rejected_after: Sequence[float],
    next_token_probs_before: Sequence[Sequence[float]] | None = None,
    next_token_probs_after: Sequence[Sequence[float]] | None = None,
    vocabulary: Sequence[str] | None = None,
    top: int = 5,
    on_invalid: str = "raise",
) -> MetricResult:
    """Fraction of pairs whose preferred response lost likelihood, mean Δ log π of each side, and where mass went."""
    columns = [logp_chosen_before, logp_chosen_after, logp_rejected_before, logp_rejected_after]
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise MetricError(
            f"likelihood_displacement: columns of lengths {[len(c) for c in columns]}; give one per pair"
        )
    notes: list[str] = []
    keep = np.arange(n)
    for name, c in zip(
        ("logp_chosen_before", "logp_chosen_after", "logp_rejected_before", "logp_rejected_after"), columns
    ):
        keep = np.intersect1d(keep, check_finite(c, f"{name} values", on_invalid, notes)[1])
    cb, ca, rb, ra = (np.asarray(c, dtype=float)[keep] for c in columns)
    dp, dn = ca - cb, ra - rb
    estimates = {
        "displaced_fraction": proportion_estimate(dp < 0),
        "delta_logp_chosen": mean_estimate(dp),
        "delta_logp_rejected": mean_estimate(dn),
    }
    details: dict = {"delta_chosen": dp.tolist(), "delta_rejected": dn.tolist()}
    if next_token_probs_before is not None and next_token_probs_after is not None:
        before = np.asarray(next_token_probs_before, dtype=float)
        after = np.asarray(next_token_probs_after, dtype=float)
        if before.shape != after.shape:
            raise MetricError(f"next-token probabilities of shapes {before.shape} and {after.shape}")
        gain = (after - before).reshape(-1, before.shape[-1]).mean(0)
        names = list(vocabulary) if vocabulary is not None else [str(i) for i in range(len(gain))]
        order = np.argsort(-gain)[:top]
        details["mass_went_to"] = [{"token": names[j], "probability_gain": float(gain[j])} for j in order]
    return MetricResult("likelihood_displacement", estimates, details, notes)
