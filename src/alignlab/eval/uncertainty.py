"""Figures with their uncertainty: every number a metric reports is an :class:`Estimate` (a value with a standard
error and/or a bootstrap interval), and two systems are called different only when an interval says so.

Standard error of a mean: sem = s/√n with the sample standard deviation (ddof = 1). Bootstrap: resample the
units (prompts, pairs, battles) with replacement B times, recompute the statistic, and take the 2.5 and 97.5
percentiles (the percentile interval of Efron & Tibshirani 1993, ch. 13; Chatbot Arena's elo_analysis uses the
same percentiles). A normal interval from an SE is value ± 1.96·SE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A figure with its uncertainty: ``se`` (standard error) and/or ``ci`` (95% interval), over ``n`` units."""

    value: float
    se: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None

    def __post_init__(self) -> None:
        if self.se is None and self.ci is None:
            raise ValueError("an Estimate needs a standard error or an interval")

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% interval: the bootstrap one when there is one, else value ± 1.96·SE."""
        if self.ci is not None:
            return self.ci
        assert self.se is not None
        return (self.value - Z95 * self.se, self.value + Z95 * self.se)

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 3) -> str:
        if self.se is not None and math.isfinite(self.se):
            return f"{self.value:.{digits}g} ± {self.se:.2g}"
        lo, hi = self.interval
        return f"{self.value:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value}
        if self.se is not None:
            out["se"] = self.se
        out["ci95"] = list(self.interval)
        if self.n is not None:
            out["n"] = self.n
        return out


def mean_estimate(
    values: Sequence[float] | np.ndarray, scale: float = 1.0, bounds: tuple[float, float] | None = None
) -> Estimate:
    """scale·mean with scale·sem (ddof = 1; NaN for one value); the 95% interval mean ± 1.96·sem, clipped to
    ``bounds`` when given (a win rate cannot leave [0, 100])."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("no values to average")
    se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else float("nan")
    value, se = scale * float(arr.mean()), scale * se
    ci = None
    if bounds is not None and math.isfinite(se):
        ci = (max(bounds[0], value - Z95 * se), min(bounds[1], value + Z95 * se))
    return Estimate(value, se, ci, n=int(arr.size))


def proportion_estimate(outcomes: Sequence[float] | np.ndarray, scale: float = 1.0) -> Estimate:
    """scale·(fraction of successes) with the binomial SE √(p(1 − p)/n) and the Wilson score interval
    (Wilson 1927), which stays inside [0, 1] and is not degenerate at 0 or 1 successes."""
    arr = np.asarray(outcomes, dtype=float)
    if arr.size == 0:
        raise ValueError("no outcomes")
    n, p = arr.size, float(arr.mean())
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return Estimate(
        scale * p, scale * math.sqrt(p * (1 - p) / n), (scale * (centre - half), scale * (centre + half)), n=n
    )


def bootstrap(
    statistic: Callable[[np.ndarray], Any], n: int, rounds: int = 1000, seed: int = 0
) -> np.ndarray:
    """``statistic(indices)`` on ``rounds`` resamples of range(n) with replacement; stacked as an array."""
    rng = np.random.default_rng(seed)
    return np.asarray([statistic(rng.integers(0, n, size=n)) for _ in range(rounds)], dtype=float)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    low = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(samples, [low, 100 - low])
    return float(lo), float(hi)


def bootstrap_estimate(
    statistic: Callable[[np.ndarray], float], n: int, rounds: int = 1000, seed: int = 0
) -> Estimate:
    """statistic(all units) with the bootstrap SE (std of the replicates) and percentile interval."""
    value = float(statistic(np.arange(n)))
    samples = bootstrap(statistic, n, rounds, seed)
    return Estimate(value, float(np.nanstd(samples, ddof=1)), percentile_ci(samples), n=n)


def differs(a: Estimate, b: Estimate) -> bool:
    """Whether independent estimates a and b differ at the 95% level: |a − b| > 1.96·√(se_a² + se_b²) when both
    have SEs, else disjoint intervals (a conservative test)."""
    if a.se is not None and b.se is not None and math.isfinite(a.se) and math.isfinite(b.se):
        return abs(a.value - b.value) > Z95 * math.hypot(a.se, b.se)
    (alo, ahi), (blo, bhi) = a.interval, b.interval
    return ahi < blo or bhi < alo


def against(estimate: Estimate, null: float, higher: str, lower: str) -> str:
    """``higher`` or ``lower`` when the 95% interval of ``estimate`` excludes ``null``, else 'not distinguishable'."""
    lo, hi = estimate.interval
    return higher if lo > null else lower if hi < null else "not distinguishable"


def verdict(difference: Estimate, null: float = 0.0) -> str:
    """'higher', 'lower' or 'not distinguishable' from an estimate of a difference and its interval."""
    lo, hi = difference.interval
    if lo > null:
        return "higher"
    if hi < null:
        return "lower"
    return "not distinguishable"


@dataclass
class MetricResult:
    """What a metric returns: named ``estimates`` (each with its uncertainty), ``details`` (tables, curves,
    bins: anything a plot or a reader needs) and ``notes`` (records left out or repaired, with counts)."""

    metric: str
    estimates: dict[str, Estimate]
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Estimate:
        return self.estimates[key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "estimates": {k: v.to_dict() for k, v in self.estimates.items()},
            "details": _plain(self.details),
            "notes": list(self.notes),
        }


def _plain(value: Any) -> Any:
    """JSON-ready copy (numpy arrays/scalars to lists/floats, Estimates to dicts)."""
    if isinstance(value, Estimate):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
