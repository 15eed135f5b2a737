"""Reward-model over-optimisation curves (Gao et al. 2022, arXiv 2210.10760) and their use for direct alignment
algorithms (Rafailov et al. 2024, arXiv 2406.02900).

With d = √KL(π ‖ π_init) and the gold reward measured relative to the initial policy (R(0) = 0), Gao et al.'s
functional forms (their Eq. 1–2) are

    best-of-n:  R_bon(d) = d·(α_bon − β_bon·d)          peak at d* = α_bon / (2·β_bon)
    RL:         R_RL(d)  = d·(α_RL − β_RL·log d)        peak at d* = exp(α_RL/β_RL − 1)

(natural log; BoN's KL from n is log n − (n − 1)/n, :func:`alignlab.eval.curves.kl_best_of_n`). Both are linear in
(α, β), so they are fitted by ordinary least squares; the standard errors are OLS's, σ̂²(XᵀX)⁻¹ with
σ̂² = RSS/(n − 2), and the peak's by the delta method. ``gold`` is made relative by subtracting the gold reward of
the point with KL = 0 when there is one (else ``gold_at_init`` must be given, or the values are taken as gains).

checked: functional forms and peak positions against Gao et al. 2022 Eq. 1–2 and §3 (the METHODS.md
"overopt_curves" block, "unverified in code"); DAA sweep per Rafailov et al. 2024 §3 (abstract and figures:
the same R_RL form fitted to win rate against √KL, one curve per β).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.eval.inputs import check_finite
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import Estimate, MetricResult

FORMS = ("bon", "rl")


def _design(d: np.ndarray, form: str) -> np.ndarray:
    if form == "bon":
        return np.stack([d, -(d**2)], axis=1)
    return np.stack([d, -d * np.log(d)], axis=1)


def fit_form(d: np.ndarray, gain: np.ndarray, form: str) -> dict[str, Any]:
    """OLS (α, β) with covariance, the peak d* with its delta-method SE, and R² (see the module docstring)."""
    if form not in FORMS:
        raise MetricError(f"form must be one of {', '.join(FORMS)}, got '{form}'")
    keep = d > 0 if form == "rl" else np.ones_like(d, dtype=bool)
    d, gain = d[keep], gain[keep]
    if len(d) < 3:
        raise MetricError(f"over-optimisation fit needs at least 3 points with KL > 0, got {len(d)}")
    x = _design(d, form)
    coef, *_ = np.linalg.lstsq(x, gain, rcond=None)
    resid = gain - x @ coef
    sigma2 = float(resid @ resid) / (len(d) - 2) if len(d) > 2 else float("nan")
    cov = sigma2 * np.linalg.inv(x.T @ x)
    alpha, beta = float(coef[0]), float(coef[1])
    if form == "bon":
        peak = alpha / (2 * beta) if beta > 0 else math.inf
        grad = np.array([1 / (2 * beta), -alpha / (2 * beta**2)]) if beta > 0 else None
    else:
        peak = math.exp(alpha / beta - 1) if beta > 0 else math.inf
        grad = np.array([peak / beta, -peak * alpha / beta**2]) if beta > 0 else None
    peak_se = float(math.sqrt(grad @ cov @ grad)) if grad is not None else math.inf
    total = float(((gain - gain.mean()) ** 2).sum())
    return {
        "alpha": alpha,
        "beta": beta,
        "alpha_se": float(math.sqrt(cov[0, 0])),
        "beta_se": float(math.sqrt(cov[1, 1])),
        "peak_d": peak,
        "peak_d_se": peak_se,
        "r2": 1 - float(resid @ resid) / total if total > 0 else float("nan"),
        "points": len(d),
    }


def relative_gold(kl: np.ndarray, gold: np.ndarray, gold_at_init: float | None) -> tuple[np.ndarray, str]:
    if gold_at_init is not None:
        return gold - gold_at_init, "gold − gold_at_init"
    at_zero = np.flatnonzero(kl == 0)
    if at_zero.size:
        return gold - gold[at_zero].mean(), "gold − gold at KL = 0"
    return gold, "gold as given (already a gain over the initial policy)"


@register_metric(
    "overopt_curves",
    paper="Gao et al. 2022, Scaling Laws for Reward Model Overoptimization (arXiv 2210.10760)",
    inputs="curve",
    checked="Gao et al. 2022 Eq. 1-2 (functional forms); least squares with OLS standard errors",
)
def overopt_curves(
    *,
    kl: Sequence[float],
    gold: Sequence[float],
    proxy: Sequence[float] | None = None,
    form: str = "rl",
    gold_at_init: float | None = None,
    on_invalid: str = "raise",
) -> MetricResult:
    """Gold (and proxy) reward against √KL, Gao et al.'s form fitted with SEs, and where gold peaks."""
    notes: list[str] = []
    kl_arr, keep = check_finite(kl, "KL values", on_invalid, notes)
    _, keep_g = check_finite(gold, "gold rewards", on_invalid, notes)
    both = np.intersect1d(keep, keep_g)
    kl_arr = np.asarray(kl, dtype=float)[both]
    g = np.asarray(gold, dtype=float)[both]
    if np.any(kl_arr < -1e-9):
        raise MetricError(f"KL must be ≥ 0; got {kl_arr.min():.4g} (an estimate from too few samples?)")
    kl_arr = np.clip(kl_arr, 0, None)
    gain, how = relative_gold(kl_arr, g, gold_at_init)
    d = np.sqrt(kl_arr)
    fit = fit_form(d, gain, form)
    estimates = {
        "alpha": Estimate(fit["alpha"], fit["alpha_se"], n=fit["points"]),
        "beta": Estimate(fit["beta"], fit["beta_se"], n=fit["points"]),
        "peak_sqrt_kl": Estimate(fit["peak_d"], fit["peak_d_se"], n=fit["points"]),
    }
    order = np.argsort(d)
    details: dict[str, Any] = {
        "form": form,
        "d": d[order].tolist(),
        "kl": kl_arr[order].tolist(),
        "gold": gain[order].tolist(),
        "gold_reference": how,
        "fit": fit,
        "rises_then_falls": bool(fit["beta"] > 0 and d.min() < fit["peak_d"] < d.max()),
    }
    if proxy is not None:
        p = np.asarray(proxy, dtype=float)[both]
        details["proxy"] = (p - (p[kl_arr == 0].mean() if np.any(kl_arr == 0) else 0.0))[order].tolist()
    return MetricResult("overopt_curves", estimates, details, notes)


@register_metric(
    "daa_overopt_curves",
    paper="Rafailov et al. 2024, Scaling Laws for Reward Model Overoptimization in Direct Alignment Algorithms (arXiv 2406.02900)",
    inputs="curve",
    checked="Rafailov et al. 2024 abstract and §3 (unverified in code): R_RL form per β sweep",
)
def daa_overopt_curves(
    *,
    beta: Sequence[float],
    kl: Sequence[float],
    gold: Sequence[float],
    gold_at_init: float | None = None,
    on_invalid: str = "raise",
) -> MetricResult:
    """DPO/IPO/SLiC β sweep: KL against 1/β (monotone?), gold against √KL with the R_RL form fitted over the sweep."""
    b = np.asarray(beta, dtype=float)
    if len(b) != len(kl) or len(b) != len(gold):
        raise MetricError(
            f"daa_overopt_curves: {len(b)} β values, {len(kl)} KL values and {len(gold)} gold values"
        )
    if np.any(b <= 0):
        raise MetricError("daa_overopt_curves: every β must be > 0")
    result = overopt_curves(kl=kl, gold=gold, form="rl", gold_at_init=gold_at_init, on_invalid=on_invalid)
    order = np.argsort(-b)  # from strong to weak regularisation
    kl_sorted = np.asarray(kl, dtype=float)[order]
    result.metric = "daa_overopt_curves"
    result.details["by_beta"] = {
        "beta": b[order].tolist(),
        "kl": kl_sorted.tolist(),
        "gold": np.asarray(gold, dtype=float)[order].tolist(),
    }
    result.details["kl_increases_as_beta_falls"] = bool(np.all(np.diff(kl_sorted) >= -1e-12))
    return result
