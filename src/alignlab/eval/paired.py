"""Paired comparisons over a few units (seeds, worlds): is the mean difference a - b away from zero?

For differences d_k = a_k − b_k, k = 1..n: mean d̄, standard error s/√n (sample std, ddof = 1), the paired
t statistic t = d̄ / (s/√n) with n − 1 degrees of freedom and its two-sided p-value
p = I_{ν/(ν+t²)}(ν/2, 1/2) (ν = n − 1; I the regularised incomplete beta function, Abramowitz & Stegun
26.7.1 / 26.5.27, computed by the continued fraction of Numerical Recipes §6.4), and the exact sign-flip
(randomisation) test: under "no difference" each d_k is as likely to have been −d_k, so
p = #{signs σ ∈ {±1}^n : |Σ σ_k d_k| ≥ |Σ d_k|} / 2^n (Fisher 1935; assumption-free, but with n = 5 its
smallest possible p is 2/32 = 0.0625). Tests: tests/eval/test_paired.py (against scipy.stats and by hand).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes §6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def sign_flip_p(differences: Sequence[float]) -> float:
    """Exact two-sided sign-flip p-value of the mean of ``differences`` (2^n sign patterns, n ≤ 20)."""
    n = len(differences)
    if n > 20:
        raise ValueError("sign_flip_p enumerates 2^n patterns; use n <= 20")
    observed = abs(sum(differences))
    hits = sum(
        abs(sum(s * d for s, d in zip(signs, differences))) >= observed - 1e-12
        for signs in itertools.product((1.0, -1.0), repeat=n)
    )
    return hits / 2**n


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_difference: float
    se: float
    t: float
    df: int
    p_t: float
    p_sign_flip: float
    wins: int  # units where a > b

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired t and sign-flip tests of mean(a − b) = 0 over ``n`` ≥ 2 paired units."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("paired_test needs two equally long sequences of at least 2 values")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    return PairedTest(n, mean, se, t, n - 1, t_two_sided_p(t, n - 1), sign_flip_p(d), sum(x > 0 for x in d))
