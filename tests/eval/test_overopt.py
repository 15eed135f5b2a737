"""overopt_curves / daa_overopt_curves: Gao et al.'s forms recovered from planted points, and the rise-then-fall
of gold reward against √KL for a proxy reward fitted on a simulated world (alignlab.sim)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.eval.registry import MetricError, run_metric
from alignlab.sim.bandit_rl import fit_reward_table, regularised_optimum, sample_labelled_pairs
from alignlab.sim.tabular import kl_divergence, random_world
from alignlab.sim.tabular_nash import best_of_n_policy


def test_bon_form_recovered_from_planted_points():
    # METHODS.md: alpha = 1, beta = 0.2, noise sigma = 0.01 -> within 2%, peak at d = 2.5.
    rng = np.random.default_rng(0)
    d = np.linspace(0.1, 5, 40)
    gain = d * (1 - 0.2 * d) + rng.normal(0, 0.01, d.size)
    result = run_metric("overopt_curves", kl=d**2, gold=gain, form="bon")
    assert result["alpha"].value == pytest.approx(1.0, rel=0.02)
    assert result["beta"].value == pytest.approx(0.2, rel=0.02)
    assert result["peak_sqrt_kl"].value == pytest.approx(2.5, rel=0.02)
    lo, hi = result["peak_sqrt_kl"].interval
    assert lo <= 2.5 <= hi
    assert result.details["rises_then_falls"]


def test_rl_form_recovered_and_gold_made_relative():
    rng = np.random.default_rng(1)
    d = np.concatenate([[0.0], np.linspace(0.2, 6, 30)])
    gain = np.where(d > 0, d * (1.0 - 0.5 * np.log(np.where(d > 0, d, 1))), 0) + rng.normal(0, 0.005, d.size)
    result = run_metric("overopt_curves", kl=d**2, gold=gain + 3.0, form="rl")  # gold at init = 3 is removed
    assert result["alpha"].value == pytest.approx(1.0, rel=0.02)
    assert result["beta"].value == pytest.approx(0.5, rel=0.02)
    assert result["peak_sqrt_kl"].value == pytest.approx(math.exp(1.0 / 0.5 - 1), rel=0.03)


def _world():
    world = random_world(num_prompts=8, num_completions=40, seed=0)
    pairs = sample_labelled_pairs(world, budget=300, seed=1)
    proxy = fit_reward_table(world, pairs, seed=2, bootstrap=False)
    return world, proxy


def _expected(world, policy, table):
    return float((world.prompt_probs[:, None] * policy * table).sum())


def test_simulated_proxy_overoptimises_rise_then_fall():
    world, proxy = _world()
    kls, gold, prox = [], [], []
    for n in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        pi = torch.tensor(
            np.stack([best_of_n_policy(proxy[x], world.ref_probs[x], n) for x in range(world.num_prompts)])
        )
        kls.append(kl_divergence(pi, world.ref_probs, world.prompt_probs))
        gold.append(_expected(world, pi, world.reward))
        prox.append(_expected(world, pi, proxy))
    result = run_metric("overopt_curves", kl=kls, gold=gold, proxy=prox, form="bon")
    assert np.all(np.diff(prox) > 0)  # the proxy keeps rising
    assert result.details["rises_then_falls"] and result.details["fit"]["r2"] > 0.9
    best = np.sqrt(np.clip(kls, 0, None))[int(np.argmax(gold))]
    assert abs(result["peak_sqrt_kl"].value - best) < 0.5

    # RL: the exact KL-regularised optimum of the proxy over a β sweep (DPO's closed form as well).
    betas = [10, 3, 1, 0.5, 0.3, 0.2, 0.1]
    pis = [regularised_optimum(world, proxy, b) for b in betas]
    kl_rl = [kl_divergence(p, world.ref_probs, world.prompt_probs) for p in pis]
    gold_rl = [_expected(world, p, world.reward) for p in pis]
    g0 = _expected(world, world.ref_probs, world.reward)
    daa = run_metric("daa_overopt_curves", beta=betas, kl=kl_rl, gold=gold_rl, gold_at_init=g0)
    assert daa.details["kl_increases_as_beta_falls"]  # METHODS.md daa test: KL monotone in 1/β
    assert daa.details["rises_then_falls"] and daa.details["fit"]["r2"] > 0.8


def test_too_few_points_and_negative_kl_are_errors():
    with pytest.raises(MetricError, match="at least 3 points"):
        run_metric("overopt_curves", kl=[0.1, 0.2], gold=[0.1, 0.2])
    with pytest.raises(MetricError, match="KL must be ≥ 0"):
        run_metric("overopt_curves", kl=[-0.5, 0.2, 0.3, 0.4], gold=[0.1, 0.2, 0.3, 0.1])
    with pytest.raises(MetricError, match="1 of 4 gold rewards invalid .*NaN: record 2"):
        run_metric("overopt_curves", kl=[0.1, 0.2, 0.3, 0.4], gold=[0.1, 0.2, float("nan"), 0.1])
