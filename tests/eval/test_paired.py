"""Paired tests over a few seeds: the t p-value against scipy.stats and a hand computation, the sign-flip
p-value by hand."""

from __future__ import annotations

import math

import pytest

from alignlab.eval.paired import incomplete_beta, paired_test, sign_flip_p, t_two_sided_p


def test_t_p_value_by_hand_for_one_and_two_degrees_of_freedom():
    # df = 1 is the Cauchy distribution: P(|T| > t) = 1 - 2 atan(t) / pi.
    for t in (0.3, 1.0, 4.2):
        assert t_two_sided_p(t, 1) == pytest.approx(1 - 2 * math.atan(t) / math.pi, abs=1e-12)
    # df = 2: P(|T| > t) = 1 - t / sqrt(2 + t^2).
    for t in (0.5, 2.0, 9.0):
        assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)


def test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    for a, b, x in ((2.0, 0.5, 0.3), (0.5, 0.5, 0.9), (7.5, 3.0, 0.6)):
        assert incomplete_beta(a, b, x) == pytest.approx(float(special.betainc(a, b, x)), abs=1e-12)
    a, b = [1.13, 0.98, 1.05, 0.91, 1.20], [0.90, 0.95, 0.88, 0.93, 1.01]
    ours = paired_test(a, b)
    theirs = stats.ttest_rel(a, b)
    assert ours.t == pytest.approx(float(theirs.statistic), rel=1e-12)
    assert ours.p_t == pytest.approx(float(theirs.pvalue), rel=1e-9)


def test_sign_flip_p_by_hand():
    # all 3 differences positive: only the all-plus and all-minus patterns reach |sum| = 6 -> 2/8
    assert sign_flip_p([1.0, 2.0, 3.0]) == 2 / 8
    # [3, -1]: sums of the 4 patterns are 2, 4, -4, -2; |.| >= 2 for all -> 1
    assert sign_flip_p([3.0, -1.0]) == 1.0
    r = paired_test([2.0, 3.0, 5.0], [1.0, 1.0, 2.0])  # differences 1, 2, 3
    assert (r.mean_difference, r.se, r.wins, r.df) == (2.0, pytest.approx(1 / math.sqrt(3)), 3, 2)
