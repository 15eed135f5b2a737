"""Expected calibration error of a reward or preference model (Guo et al. 2017, arXiv 1706.04599, Eq. 3).

Prediction p_i = P(chosen_i ≻ rejected_i) (σ(r_w − r_l) for scalar rewards). Confidence c_i = max(p_i, 1 − p_i),
prediction ŷ_i = 1[p_i > ½], correct_i = 1[ŷ_i = 1] (the chosen side is the label; p_i = ½ exactly counts ½).
The range [0, 1] is cut into M equal-width bins B_m = [m/M, (m+1)/M) (the last one closed); confidences fill
the upper half. ECE = Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|. With M = 10 this is exactly the ECE of
``rm_metrics.expected_calibration_error`` (every pair counted in both orders over 10 bins), since the mirrored
bin has the same gap. The interval is the bootstrap over pairs (1000 resamples, percentile).

checked: Guo et al. 2017 §2 (ECE definition); the METHODS.md "ece" hand table (bins [0.6,0.7) and [0.9,1.0],
ECE = 0.05) is the test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignlab.eval.inputs import check_range
from alignlab.eval.registry import register_metric
from alignlab.eval.uncertainty import MetricResult, bootstrap_estimate, mean_estimate


def confidence_ece(p: np.ndarray, n_bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """(ECE, bins) from predictions p = P(chosen ≻ rejected) (see the module docstring)."""
    conf = np.maximum(p, 1 - p)
    correct = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
    index = np.minimum(np.floor(conf * n_bins).astype(int), n_bins - 1)
    ece, bins = 0.0, []
    for b in range(n_bins):
        sel = index == b
        if not sel.any():
            continue
        acc, mean_conf = float(correct[sel].mean()), float(conf[sel].mean())
        ece += sel.sum() / len(p) * abs(acc - mean_conf)
        bins.append(
            {
                "low": b / n_bins,
                "high": (b + 1) / n_bins,
                "n": int(sel.sum()),
                "confidence": mean_conf,
                "accuracy": acc,
            }
        )
    return float(ece), bins


@register_metric(
    "ece",
    paper="Guo et al. 2017, On Calibration of Modern Neural Networks (arXiv 1706.04599)",
    inputs="pairs",
    checked="Guo et al. 2017 §2 Eq. 3 (standard definition; no official code for RMs)",
)
def ece(
    *,
    p_chosen: Sequence[float],
    n_bins: int = 10,
    rounds: int = 1000,
    seed: int = 0,
    on_invalid: str = "raise",
) -> MetricResult:
    """Expected calibration error over M equal-width confidence bins, with a bootstrap interval."""
    notes: list[str] = []
    p, _ = check_range(list(p_chosen), "predictions P(chosen ≻ rejected)", 0.0, 1.0, on_invalid, notes)
    value, bins = confidence_ece(p, n_bins)
    correct = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
    return MetricResult(
        "ece",
        {
            "ece": bootstrap_estimate(lambda idx: confidence_ece(p[idx], n_bins)[0], len(p), rounds, seed),
            "accuracy": mean_estimate(correct),
        },
        {"bins": bins, "n_bins": n_bins, "range": [0.0, 1.0], "point": value},
        notes,
    )
