"""Tabular online RL, DPO on finite labels and proxy ensembles, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.recipes.claims import run_claims
from alignlab.sim import bandit_rl
from alignlab.sim.tabular import TabularWorld, total_variation

D = torch.float64


def _two_arm_pairs(n_ab: int, n_ba: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.zeros(n_ab + n_ba, dtype=torch.long)
    chosen = torch.tensor([0] * n_ab + [1] * n_ba)
    return x, chosen, 1 - chosen


def test_dpo_on_finite_pairs_reaches_the_empirical_optimum():
    # one prompt, two completions, a ≻ b observed 6 times and b ≻ a twice: the empirical DPO optimum has
    # β·(ρ_a − ρ_b) = log(6/2) (set the derivative of 6·logσ(βh) + 2·logσ(−βh) to zero)
    world = TabularWorld(ref_logp=torch.tensor([[0.3, -0.3]], dtype=D), reward=torch.zeros(1, 2, dtype=D))
    beta = 0.5
    policy = bandit_rl.dpo_on_pairs(world, _two_arm_pairs(6, 2), beta)
    h = math.log(policy[0, 0] / policy[0, 1]) - 0.6
    assert beta * h == pytest.approx(math.log(3.0), abs=1e-6)


def test_bradley_terry_table_fits_the_log_odds():
    world = TabularWorld(ref_logp=torch.zeros(1, 2, dtype=D), reward=torch.zeros(1, 2, dtype=D))
    table = bandit_rl.fit_reward_table(world, _two_arm_pairs(6, 2), seed=0, anchor=0.0, bootstrap=False)
    assert float(table[0, 0] - table[0, 1]) == pytest.approx(math.log(3.0), abs=1e-5)


def test_standardise_gives_mean_zero_variance_one_under_the_reference():
    gen = torch.Generator().manual_seed(0)
    world = TabularWorld(
        ref_logp=torch.randn(3, 5, generator=gen, dtype=D), reward=torch.zeros(3, 5, dtype=D)
    )
    tables = torch.randn(2, 3, 5, generator=gen, dtype=D) * 4 + 2
    z = bandit_rl.standardise(tables, world).numpy()
    w = (world.prompt_probs[:, None] * world.ref_probs).numpy()
    for m in range(2):
        assert (z[m] * w).sum() == pytest.approx(0.0, abs=1e-12)
        assert ((z[m] ** 2) * w).sum() == pytest.approx(1.0, abs=1e-12)


def test_online_rl_approaches_the_kl_regularised_optimum():
    world = TabularWorld(
        ref_logp=torch.log(torch.tensor([[0.5, 0.3, 0.2]], dtype=D)),
        reward=torch.tensor([[0.0, 1.0, 0.5]], dtype=D),
    )
    beta = 0.5
    run = bandit_rl.online_rl(world, budget=16 * 1500, beta=beta, group_size=16, lr=0.05, seed=0)
    assert run.judge_calls == 16 * 1500 and run.steps == 1500
    # sampled gradients: the iterate wanders around π_ref·exp(r/β)/Z; far from π_ref (TV 0.27) it is close
    assert total_variation(run.policy, world.dpo_optimum(beta)) < 0.03
    assert total_variation(world.ref_probs, world.dpo_optimum(beta)) > 0.2


def test_labelled_pairs_follow_the_preference():
    world = TabularWorld(ref_logp=torch.zeros(1, 2, dtype=D), reward=torch.tensor([[2.0, 0.0]], dtype=D))
    x, chosen, rejected = bandit_rl.sample_labelled_pairs(world, 4000, seed=1)
    assert torch.all(chosen != rejected)
    frac = float((chosen == 0).double().mean())
    assert frac == pytest.approx(1 / (1 + math.exp(-2.0)), abs=0.03)
    _, chosen_f, _ = bandit_rl.sample_labelled_pairs(world, 4000, seed=1, flip_rate=1.0)
    assert float((chosen_f == 0).double().mean()) == pytest.approx(1 - 1 / (1 + math.exp(-2.0)), abs=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["online_rl_vs_offline_dpo", "conservative_ensemble"])
def test_online_claims_run(name):
    (result,) = run_claims([name])
    assert result.passed, result.result
    assert np.isfinite(result.seconds)
