"""Best-of-n estimators and Gao et al.'s fitted forms against closed forms and Monte Carlo."""

import math

import numpy as np
import pytest

from alignlab.eval.curves import (
    best_of_n_curve,
    best_of_n_expectation,
    best_of_n_standard_error,
    best_of_n_weights,
    bon_peak,
    fit_bon,
    fit_rl,
    kl_best_of_n,
)


def test_kl_best_of_n_value():
    assert kl_best_of_n(4) == pytest.approx(math.log(4) - 0.75)  # 0.6363
    assert kl_best_of_n(1) == 0.0


def test_order_statistic_weights_match_enumeration():
    values = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    m, n = len(values), 3
    from itertools import combinations

    subsets = list(combinations(range(m), n))
    brute = np.mean([values[list(s)].max() for s in subsets])
    assert best_of_n_expectation(values, values, n) == pytest.approx(brute)
    assert best_of_n_weights(m, n).sum() == pytest.approx(1.0)


def test_best_of_n_beats_single_sample_n_over_n_plus_one():
    # P(r(BoN) > r(independent single)) = N/(N+1) for continuous i.i.d. rewards
    rng = np.random.default_rng(0)
    trials, n = 100_000, 4
    best = rng.normal(size=(trials, n)).max(1)
    single = rng.normal(size=trials)
    p = float(np.mean(best > single))
    assert abs(p - n / (n + 1)) < 3 * math.sqrt(0.8 * 0.2 / trials)


def test_curve_gold_follows_proxy_ranking():
    proxy = np.array([[0.0, 1.0, 2.0]])
    gold = np.array([[5.0, 7.0, 1.0]])
    curve = best_of_n_curve(proxy, gold, [1, 2, 3])
    # n=1: mean 13/3; n=2: pairs {01:7, 02:1, 12:1} → 3; n=3: 1
    assert curve["gold"] == pytest.approx([13 / 3, 3.0, 1.0])
    assert curve["proxy"] == pytest.approx([1.0, (1 + 2 + 2) / 3, 2.0])


def test_fit_bon_recovers_parameters_and_peak():
    rng = np.random.default_rng(0)
    d = np.linspace(0.2, 5, 40)
    y = d * (1.0 - 0.2 * d) + rng.normal(0, 0.01, d.shape)
    alpha, beta = fit_bon(d, y)
    assert alpha == pytest.approx(1.0, rel=0.02)
    assert beta == pytest.approx(0.2, rel=0.02)
    assert bon_peak(1.0, 0.2) == pytest.approx(2.5)


def test_fit_rl_recovers_parameters():
    d = np.linspace(0.1, 4, 30)
    alpha, beta = fit_rl(d, d * (0.8 - 0.3 * np.log(d)))
    assert (alpha, beta) == pytest.approx((0.8, 0.3), rel=1e-6)


def test_best_of_n_standard_error_is_the_spread_over_prompts():
    """n = m keeps each prompt's proxy-best sample: the SE is sd/√P of those samples' gold (numpy); n = 1
    averages each prompt's samples: sd/√P of the per-prompt means."""
    rng = np.random.default_rng(0)
    proxy, gold = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    best = gold[np.arange(40), proxy.argmax(1)]
    assert best_of_n_standard_error(proxy, gold, 6) == pytest.approx(best.std(ddof=1) / math.sqrt(40))
    means = gold.mean(1)
    assert best_of_n_standard_error(proxy, gold, 1) == pytest.approx(means.std(ddof=1) / math.sqrt(40))
