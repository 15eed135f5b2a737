"""Core pairwise objectives: values and gradients vs numpy formulas, limits, and tabular-world behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.objectives import pairwise_loss
from alignlab.sim.tabular import random_world
from tests.objectives._pairwise_numpy import CHOSEN_LENGTHS as LW
from tests.objectives._pairwise_numpy import REF_CHOSEN as RW
from tests.objectives._pairwise_numpy import REF_REJECTED as RL
from tests.objectives._pairwise_numpy import REJECTED_LENGTHS as LL
from tests.objectives._pairwise_numpy import leaves, logsigmoid, numeric_grad, sigmoid


def _h(a, b):
    return (a - RW) - (b - RL)


def _log1mexp(x):
    return np.log(-np.expm1(x))


# name, hyper-parameters, numpy formula of the per-pair loss as a function of policy log-probs (a, b)
CASES = [
    ("dpo", {"beta": 0.1}, lambda a, b: -logsigmoid(0.1 * _h(a, b))),
    ("ipo", {"tau": 0.1}, lambda a, b: ((a - RW) / LW - (b - RL) / LL - 5.0) ** 2),
    ("ipo", {"tau": 0.5, "ipo_normalize": False}, lambda a, b: (_h(a, b) - 1.0) ** 2),
    ("hinge", {"beta": 0.5}, lambda a, b: np.maximum(0.0, 1.0 - 0.5 * _h(a, b))),
    ("slic", {"delta": 1.0, "lambda_reg": 0.1}, lambda a, b: np.maximum(0.0, 1.0 - a + b) - 0.1 * a),
    (
        "cdpo",
        {"beta": 0.1, "epsilon": 0.2},
        lambda a, b: -0.8 * logsigmoid(0.1 * _h(a, b)) - 0.2 * logsigmoid(-0.1 * _h(a, b)),
    ),
    (
        "rdpo",
        {"beta": 0.1, "epsilon": 0.1},
        lambda a, b: (-0.9 * logsigmoid(0.1 * _h(a, b)) + 0.1 * logsigmoid(-0.1 * _h(a, b))) / 0.8,
    ),
    (
        "rdpo_length",
        {"beta": 0.1, "alpha": 0.05},
        lambda a, b: -logsigmoid(0.1 * _h(a, b) + 0.05 * (LW - LL)),
    ),
    (
        "dpop",
        {"beta": 0.1, "lambda_penalty": 50.0},
        lambda a, b: -logsigmoid(0.1 * (_h(a, b) - 50.0 * np.maximum(0.0, RW - a))),
    ),
    ("fdpo_rkl", {"beta": 0.1}, lambda a, b: -logsigmoid(0.1 * _h(a, b))),
    ("fdpo_fkl", {"beta": 0.1}, lambda a, b: -logsigmoid(0.1 * (-np.exp(-(a - RW)) + np.exp(-(b - RL))))),
    (
        "fdpo_js",
        {"beta": 0.1},
        lambda a, b: (
            -logsigmoid(
                0.1
                * (
                    np.log(2 * np.exp(a - RW) / (1 + np.exp(a - RW)))
                    - np.log(2 * np.exp(b - RL) / (1 + np.exp(b - RL)))
                )
            )
        ),
    ),
    (
        "fdpo_alpha",
        {"beta": 0.1, "alpha": 0.3},
        lambda a, b: -logsigmoid(0.1 * (np.exp(-0.3 * (b - RL)) - np.exp(-0.3 * (a - RW))) / 0.3),
    ),
    (
        "nca",
        {"beta": 0.1},
        lambda a, b: (
            -logsigmoid(0.1 * (a - RW))
            - 0.5 * logsigmoid(-0.1 * (a - RW))
            - 0.5 * logsigmoid(-0.1 * (b - RL))
        ),
    ),
    (
        "exo",
        {"beta": 0.1, "epsilon": 1e-3},
        lambda a, b: (
            sigmoid(0.1 * _h(a, b)) * (logsigmoid(0.1 * _h(a, b)) - np.log(1 - 1e-3))
            + sigmoid(-0.1 * _h(a, b)) * (logsigmoid(-0.1 * _h(a, b)) - np.log(1e-3))
        ),
    ),
    ("apo_zero", {"beta": 0.1}, lambda a, b: 1 - sigmoid(0.1 * (a - RW)) + sigmoid(0.1 * (b - RL))),
    ("apo_down", {"beta": 0.1}, lambda a, b: sigmoid(0.1 * (a - RW)) + 1 - sigmoid(0.1 * _h(a, b))),
    ("sppo_hard", {"beta": 0.1}, lambda a, b: (a - RW - 5.0) ** 2 + (b - RL + 5.0) ** 2),
    (
        "simpo",
        {"beta": 2.0, "gamma_beta_ratio": 0.25},
        lambda a, b: -logsigmoid(2.0 * (a / LW - b / LL) - 0.5),
    ),
    (
        "simpo",
        {"beta": 2.0, "gamma_beta_ratio": 0.5, "label_smoothing": 0.1, "sft_weight": 0.3},
        lambda a, b: (
            -0.9 * logsigmoid(2.0 * (a / LW - b / LL - 0.5))
            - 0.1 * logsigmoid(-2.0 * (a / LW - b / LL - 0.5))
            - 0.3 * a / LW
        ),
    ),
    (
        "orpo",
        {"beta": 0.1},
        lambda a, b: -a / LW - 0.1 * logsigmoid((a / LW - _log1mexp(a / LW)) - (b / LL - _log1mexp(b / LL))),
    ),
    ("cpo", {"beta": 0.1, "cpo_alpha": 1.0}, lambda a, b: -logsigmoid(0.1 * (a - b)) - a / LW),
]


@pytest.mark.parametrize(
    ("name", "params", "formula"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_value_and_gradient_match_numpy(name, params, formula) -> None:
    chosen, rejected = leaves()
    loss = pairwise_loss(
        name,
        chosen,
        rejected,
        torch.tensor(RW),
        torch.tensor(RL),
        torch.tensor(LW),
        torch.tensor(LL),
        **params,
    )
    a, b = chosen.detach().numpy(), rejected.detach().numpy()
    np.testing.assert_allclose(loss.detach().numpy(), formula(a, b), rtol=1e-9, atol=1e-9)
    loss.sum().backward()
    grad_a, grad_b = numeric_grad(formula, a, b)
    np.testing.assert_allclose(chosen.grad.numpy(), grad_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rejected.grad.numpy(), grad_b, rtol=1e-5, atol=1e-6)


def _at_init(name: str, **params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss and gradients w.r.t. the policy log-probs when policy = reference (ρ = 0)."""
    chosen = torch.tensor([-5.0], dtype=torch.float64, requires_grad=True)
    rejected = torch.tensor([-7.0], dtype=torch.float64, requires_grad=True)
    loss = pairwise_loss(name, chosen, rejected, chosen.detach().clone(), rejected.detach().clone(), **params)
    loss.sum().backward()
    return loss.detach(), chosen.grad, rejected.grad


@pytest.mark.parametrize(
    ("name", "value", "grad_chosen", "grad_rejected"),
    [
        ("dpo", math.log(2), -0.05, 0.05),
        ("ipo", 25.0, None, None),
        ("hinge", 1.0, -0.1, 0.1),
        ("nca", 2 * math.log(2), -0.025, 0.025),
        ("apo_zero", 1.0, -0.025, 0.025),
        ("apo_down", 1.0, 0.0, 0.025),
        ("sppo_hard", 50.0, -10.0, 10.0),
        ("fdpo_fkl", math.log(2), None, None),
        ("fdpo_js", math.log(2), None, None),
        ("fdpo_alpha", math.log(2), None, None),
    ],
)
def test_values_at_initialisation(name, value, grad_chosen, grad_rejected) -> None:
    loss, g_w, g_l = _at_init(name)
    assert float(loss) == pytest.approx(value, abs=1e-12)
    if grad_chosen is not None:
        assert float(g_w) == pytest.approx(grad_chosen, abs=1e-12)
        assert float(g_l) == pytest.approx(grad_rejected, abs=1e-12)


def _dpo_np(z):
    return -logsigmoid(z)


def test_limits_recover_dpo() -> None:
    chosen, rejected = leaves()
    args = (
        chosen.detach(),
        rejected.detach(),
        torch.tensor(RW),
        torch.tensor(RL),
        torch.tensor(LW),
        torch.tensor(LL),
    )
    dpo = _dpo_np(0.1 * _h(*(x.numpy() for x in args[:2])))
    for name, params in [
        ("cdpo", {"epsilon": 0.0}),
        ("rdpo", {"epsilon": 0.0}),
        ("rdpo_length", {"alpha": 0.0}),
        ("dpop", {"lambda_penalty": 0.0}),
        ("fdpo_rkl", {}),
    ]:
        np.testing.assert_allclose(pairwise_loss(name, *args, beta=0.1, **params).numpy(), dpo, atol=1e-12)
    # alpha -> 0 of the alpha-divergence is reverse KL
    np.testing.assert_allclose(
        pairwise_loss("fdpo_alpha", *args, beta=0.1, alpha=1e-6).numpy(), dpo, atol=1e-5
    )
    # dpop equals dpo exactly where the chosen likelihood has not fallen below the reference (pair 0: -12 > -13)
    assert float(pairwise_loss("dpop", *args)[0]) == pytest.approx(float(dpo[0]), abs=1e-12)
    # cpo with alpha=0 is reference-free dpo: dpo on summed log-probs with zero reference
    cpo = pairwise_loss("cpo", chosen.detach(), rejected.detach(), cpo_alpha=0.0).numpy()
    np.testing.assert_allclose(
        cpo, _dpo_np(0.1 * (chosen.detach().numpy() - rejected.detach().numpy())), atol=1e-12
    )
    # simpo with unit lengths and gamma=0 is reference-free dpo with beta
    simpo = pairwise_loss("simpo", chosen.detach(), rejected.detach(), beta=0.1, gamma_beta_ratio=0.0).numpy()
    np.testing.assert_allclose(simpo, cpo, atol=1e-12)


def test_orpo_lambda_zero_is_sft_and_equal_probabilities_give_log2() -> None:
    chosen, rejected = leaves()
    sft = pairwise_loss(
        "orpo", chosen.detach(), rejected.detach(), None, None, torch.tensor(LW), torch.tensor(LL), beta=0.0
    )
    np.testing.assert_allclose(sft.numpy(), -chosen.detach().numpy() / LW, atol=1e-12)
    same = torch.tensor([-2.0], dtype=torch.float64)
    loss = pairwise_loss("orpo", same, same, None, None, torch.tensor([4.0]), torch.tensor([4.0]), beta=0.1)
    assert float(loss) == pytest.approx(0.5 + 0.1 * math.log(2), abs=1e-12)
    # log1mexp stays finite close to P = 1
    near_one = pairwise_loss(
        "orpo", torch.tensor([-1e-8], dtype=torch.float64), torch.tensor([-3.0], dtype=torch.float64)
    )
    assert torch.isfinite(near_one).all()


def test_rdpo_is_unbiased_for_the_clean_loss() -> None:
    h = np.linspace(-10, 10, 41)
    zeros = torch.zeros(41, dtype=torch.float64)
    forward = pairwise_loss("rdpo", torch.tensor(h), zeros, zeros, zeros, beta=1.0, epsilon=0.1).numpy()
    backward = pairwise_loss("rdpo", torch.tensor(-h), zeros, zeros, zeros, beta=1.0, epsilon=0.1).numpy()
    np.testing.assert_allclose(0.9 * forward + 0.1 * backward, -logsigmoid(h), atol=1e-12)


def test_cdpo_and_exo_per_pair_optima() -> None:
    grid = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    zeros = torch.zeros_like(grid)
    cdpo = pairwise_loss("cdpo", grid, zeros, zeros, zeros, beta=1.0, epsilon=0.2)
    assert float(grid[cdpo.argmin()]) == pytest.approx(math.log(4), abs=1e-3)
    assert float(cdpo.min()) == pytest.approx(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2)), abs=1e-8)
    exo = pairwise_loss("exo", grid, zeros, zeros, zeros, beta=1.0, epsilon=1e-3)
    assert float(grid[exo.argmin()]) == pytest.approx(math.log(999), abs=1e-3)
    assert float(exo.min()) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="epsilon"):
        pairwise_loss("exo", grid[:2], zeros[:2], zeros[:2], zeros[:2], epsilon=0.0)


def test_simpo_is_length_invariant_and_hinge_is_flat_past_the_margin() -> None:
    a, b = torch.tensor([-6.0], dtype=torch.float64), torch.tensor([-9.0], dtype=torch.float64)
    once = pairwise_loss("simpo", a, b, None, None, torch.tensor([3.0]), torch.tensor([3.0]))
    twice = pairwise_loss("simpo", 2 * a, 2 * b, None, None, torch.tensor([6.0]), torch.tensor([6.0]))
    assert float(once) == pytest.approx(float(twice), abs=1e-12)
    equal = pairwise_loss("simpo", a, a, None, None, torch.tensor([3.0]), torch.tensor([3.0]))
    assert float(equal) == pytest.approx(math.log1p(math.exp(0.5)), abs=1e-12)
    chosen = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    loss = pairwise_loss("hinge", chosen, zero, zero, zero, beta=0.5)
    loss.sum().backward()
    assert float(loss.detach()) == 0.0 and float(chosen.grad) == 0.0


def test_reference_is_required_and_names_the_argument() -> None:
    with pytest.raises(ValueError, match="reference_chosen_logps"):
        pairwise_loss("dpo", torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="did you mean 'beta'"):
        pairwise_loss("dpo", torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), betta=0.1)


# ------------------------------------------------------------------ tabular world
def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize(("name", "params"), [("dpo", {"beta": 0.5}), ("fdpo_rkl", {"beta": 0.5})])
def test_tabular_training_reaches_the_dpo_optimum(name, params) -> None:
    world = random_world(num_prompts=2, num_completions=4, seed=7)
    policy = world.train(name, params, steps=200).numpy()
    target = _np_softmax(world.ref_logp.numpy() + world.reward.numpy() / params["beta"])
    assert 0.5 * np.abs(policy - target).sum(-1).max() < 0.02


def test_tabular_ipo_reaches_its_closed_form() -> None:
    world = random_world(num_prompts=2, num_completions=4, seed=8)
    tau = 0.5
    policy = world.train("ipo", {"tau": tau}, steps=200).numpy()
    mu = world.ref_probs.numpy()
    reward = world.reward.numpy()
    pref = sigmoid(reward[:, :, None] - reward[:, None, :])
    win = (pref * mu[:, None, :]).sum(-1)
    target = _np_softmax(np.log(mu) + (win - 0.5) / tau)
    assert 0.5 * np.abs(policy - target).sum(-1).max() < 0.02


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("hinge", {"beta": 0.5}),
        ("cdpo", {"beta": 0.5, "epsilon": 0.1}),
        ("nca", {"beta": 0.5}),
        ("exo", {"beta": 0.5, "epsilon": 0.01}),
        ("apo_zero", {"beta": 0.5}),
        ("sppo_hard", {"beta": 0.5}),
        ("simpo", {"beta": 2.0}),
        ("orpo", {"beta": 0.5}),
        ("cpo", {"beta": 0.5, "cpo_alpha": 0.0}),
        ("fdpo_fkl", {"beta": 0.5}),
        ("fdpo_js", {"beta": 0.5}),
        ("fdpo_alpha", {"beta": 0.5}),
        ("dpop", {"beta": 0.5, "lambda_penalty": 5.0}),
        ("rdpo_length", {"beta": 0.5, "alpha": 0.0}),
    ],
)
def test_tabular_expected_reward_rises_and_loss_falls(name, params) -> None:
    world = random_world(num_prompts=1, num_completions=3, seed=11, reward_scale=2.0)
    start = float(world.expected_pair_loss(name, params))
    policy = world.train(name, params, steps=60, optimizer="adam", lr=0.1)
    end = float(world.expected_pair_loss(name, params, policy_logp=torch.log(policy)))
    assert end < start
    assert world.expected_reward(policy) > world.expected_reward(world.ref_probs)


def _np_expected_loss(logits, ref_logp, reward, pair_loss):
    """E over ordered pairs y != y' ~ pi_ref x pi_ref, weighted by BT P(y > y'), of pair_loss(rho_y, rho_y', logp)."""
    logp = logits - np.log(np.exp(logits).sum())
    mu = np.exp(ref_logp)
    rho = logp - ref_logp
    total = norm = 0.0
    for i in range(len(mu)):
        for j in range(len(mu)):
            if i != j:
                w = mu[i] * mu[j] * sigmoid(reward[i] - reward[j])
                total += w * pair_loss(rho[i], rho[j], logp[i], logp[j])
                norm += w
    return total / norm


@pytest.mark.parametrize(
    ("name", "params", "pair_loss"),
    [
        (
            "nca",
            {"beta": 0.5},
            lambda rw, rl, lw, ll: (
                -logsigmoid(0.5 * rw) - 0.5 * logsigmoid(-0.5 * rw) - 0.5 * logsigmoid(-0.5 * rl)
            ),
        ),
        ("sppo_hard", {"beta": 0.5}, lambda rw, rl, lw, ll: (rw - 1.0) ** 2 + (rl + 1.0) ** 2),
        ("apo_down", {"beta": 0.5}, lambda rw, rl, lw, ll: sigmoid(0.5 * rw) + 1 - sigmoid(0.5 * (rw - rl))),
        ("simpo", {"beta": 2.0}, lambda rw, rl, lw, ll: -logsigmoid(2.0 * (lw - ll) - 0.5)),
    ],
)
def test_tabular_minimum_matches_a_numpy_optimiser(name, params, pair_loss) -> None:
    from scipy.optimize import minimize

    world = random_world(num_prompts=1, num_completions=3, seed=5, reward_scale=2.0)
    ref_logp, reward = world.ref_logp.numpy()[0], world.reward.numpy()[0]
    best = minimize(
        lambda z: _np_expected_loss(z, ref_logp, reward, pair_loss),
        ref_logp.copy(),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    policy = world.train(name, params, steps=300)
    reached = float(world.expected_pair_loss(name, params, policy_logp=torch.log(policy)))
    assert reached == pytest.approx(best.fun, abs=1e-4)


def test_cpo_old_alpha_spelling_names_the_new_one() -> None:
    from alignlab.objectives import ObjectiveError, get

    with pytest.raises(ObjectiveError, match=r"'alpha' was renamed 'cpo_alpha'; write cpo_alpha: 0\.5"):
        get("cpo").check_params({"alpha": 0.5}, "run.yaml: ")
    assert get("cpo").check_params({"cpo_alpha": 0.5})["cpo_alpha"] == 0.5


def test_discopop_aot_and_dpo_norm_match_their_formulas_by_hand() -> None:
    """Values from the papers' formulas in plain numpy on the shared hand-picked pairs."""
    from tests.objectives._pairwise_numpy import POLICY_CHOSEN as PW
    from tests.objectives._pairwise_numpy import POLICY_REJECTED as PL

    beta, tau, eps = 0.5, 0.05, 0.1
    args = (
        torch.tensor(PW),
        torch.tensor(PL),
        torch.tensor(RW),
        torch.tensor(RL),
        torch.tensor(LW),
        torch.tensor(LL),
    )
    z = beta * ((PW - RW) - (PL - RL))
    m = sigmoid(z / tau)
    want = (1 - m) * -logsigmoid(z) + m * np.exp(-z)
    np.testing.assert_allclose(pairwise_loss("discopop", *args, beta=beta, tau=tau).numpy(), want, rtol=1e-12)
    # AOT: loss i of the sorted margins is reported on the pair holding the i-th smallest value.
    delta = np.sort(PW - PL) - np.sort(RW - RL)
    want = -(1 - eps) * logsigmoid(beta * delta) - eps * logsigmoid(-beta * delta)
    got = pairwise_loss("aot", *args, beta=beta, label_smoothing=eps).numpy()
    np.testing.assert_allclose(got[np.argsort(PW - PL)], want, rtol=1e-12)
    delta = np.sort(PW - RW) - np.sort(PL - RL)
    want = -(1 - eps) * logsigmoid(beta * delta) - eps * logsigmoid(-beta * delta)
    got = pairwise_loss("aot_unpaired", *args, beta=beta, label_smoothing=eps).numpy()
    np.testing.assert_allclose(got[np.argsort(PW - RW)], want, rtol=1e-12)
    h = (PW - RW) / LW - (PL - RL) / LL
    np.testing.assert_allclose(
        pairwise_loss("dpo_norm", *args, beta=beta).numpy(), -logsigmoid(beta * h), rtol=1e-12
    )


def test_orpo_beta_is_a_weight_zero_allowed_negative_refused() -> None:
    from alignlab.objectives.registry import ObjectiveError

    chosen, rejected = leaves()
    with pytest.raises(ObjectiveError, match="'beta' must be >= 0"):
        pairwise_loss(
            "orpo",
            chosen.detach(),
            rejected.detach(),
            None,
            None,
            torch.tensor(LW),
            torch.tensor(LL),
            beta=-0.1,
        )
    with pytest.raises(ObjectiveError, match="inverse temperature"):
        pairwise_loss("dpo", chosen.detach(), rejected.detach(), chosen.detach(), rejected.detach(), beta=0.0)
