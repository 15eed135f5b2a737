"""ADPO and LCPO against numpy formulas, their DPO / cDPO limits, and LCPO's noise-rate estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.objectives import get
from alignlab.objectives.functional import pairwise_loss
from tests.objectives._refs_listpoint import INF, list_batch, np_dpo, numeric_grad, pair_batch, softplus


def loss_of(out):
    return out[0] if isinstance(out, tuple) else out


def test_adpo_k2_hard_is_dpo_and_smoothed_is_cdpo_plus_entropy():
    cw, cl, rw, rl, tau = (
        np.array([-1.0, -3.0]),
        np.array([-2.0, -1.0]),
        np.array([-1.5, -2.0]),
        np.array([-1.2, -1.4]),
        4.0,
    )
    batch = list_batch(np.stack([cw, cl], 1), np.stack([rw, rl], 1), [[0.0, 1.0], [0.0, 1.0]])
    loss = loss_of(get("adpo").fn(batch, tau=tau))
    np.testing.assert_allclose(loss.detach().numpy(), np_dpo(cw, cl, rw, rl, 1 / tau), rtol=1e-12)
    loss.sum().backward()
    grad = numeric_grad(lambda x: np_dpo(x[:, 0], x[:, 1], rw, rl, 1 / tau).sum(), np.stack([cw, cl], 1))
    np.testing.assert_allclose(batch.items.logps.grad.numpy(), grad, atol=1e-7)
    eps = 0.2
    smooth = loss_of(
        get("adpo").fn(
            list_batch(np.stack([cw, cl], 1), np.stack([rw, rl], 1), [[0.0, 1.0]] * 2),
            tau=tau,
            label_smoothing=eps,
        )
    )
    h = ((cw - rw) - (cl - rl)) / tau
    cdpo = (1 - eps) * softplus(-h) + eps * softplus(h)
    np.testing.assert_allclose(
        smooth.detach().numpy(), cdpo + (1 - eps) * np.log(1 - eps) + eps * np.log(eps), rtol=1e-10
    )


def test_adpo_soft_listwise_with_padding():
    logps, ref = (
        np.array([[-1.0, -2.0, -0.5], [-3.0, -1.0, 0.0]]),
        np.array([[-1.5, -1.0, -1.0], [-2.0, -2.0, 0.0]]),
    )
    ratings = np.array([[[2.0], [0.0], [1.0]], [[0.5], [1.5], [0.0]]])
    ranks = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, INF]])
    loss = loss_of(
        get("adpo").fn(
            list_batch(logps, ref, ranks, ratings=ratings), tau=2.0, target="soft", label_temperature=0.5
        )
    )
    expected = []
    for g, k in ((0, 3), (1, 2)):
        q = np.exp(ratings[g, :k, 0] / 0.5)
        q /= q.sum()
        z = (logps[g, :k] - ref[g, :k]) / 2.0
        p = np.exp(z - np.log(np.exp(z).sum()))
        expected.append(np.sum(q * np.log(q / p)))
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-10)


def np_lcpo(h, beta, eps):
    p = 1 / (1 + np.exp(-beta * h))
    w = (1 - eps) * p / ((1 - eps) * p + eps * (1 - p))
    return w * softplus(-beta * h) + (1 - w) * softplus(beta * h)


def test_lcpo_value_grad_and_zero_noise_is_dpo():
    cw, cl, rw, rl, beta = (
        np.array([-1.0, -3.0, -2.0]),
        np.array([-2.0, -1.0, -2.5]),
        np.array([-1.5, -2.0, -1.0]),
        np.array([-1.2, -1.4, -3.0]),
        0.5,
    )
    batch = pair_batch(cw, cl, rw, rl)
    loss = loss_of(get("lcpo").fn(batch, state={}, beta=beta, epsilon=0.2, learn_epsilon=False))
    h = (cw - rw) - (cl - rl)
    np.testing.assert_allclose(loss.detach().numpy(), np_lcpo(h, beta, 0.2), rtol=1e-12)
    loss.sum().backward()
    # w is detached: the gradient is w·ℓ'(h) + (1 - w)·∂ℓ(-h) with w held at its value.
    p = 1 / (1 + np.exp(-beta * h))
    w = 0.8 * p / (0.8 * p + 0.2 * (1 - p))
    grad = numeric_grad(
        lambda x: (
            w * softplus(-beta * ((x - rw) - (cl - rl))) + (1 - w) * softplus(beta * ((x - rw) - (cl - rl)))
        ).sum(),
        cw,
    )
    np.testing.assert_allclose(batch.chosen.logps.grad.numpy(), grad, atol=1e-7)
    zero = loss_of(
        get("lcpo").fn(pair_batch(cw, cl, rw, rl), state={}, beta=beta, epsilon=0.0, learn_epsilon=False)
    )
    np.testing.assert_allclose(zero.detach().numpy(), np_dpo(cw, cl, rw, rl, beta), rtol=1e-12)


def test_lcpo_noise_rate_converges_to_true_flip_rate():
    """Pairs of three types with true BT probabilities p; 20% of labels flipped; the model is exact
    (h = logit(p)/β). LCPO's EM estimate of ε should approach 0.2."""
    beta, flip = 1.0, 0.2
    rows = []
    for p in (0.9, 0.6, 0.75):
        h = np.log(p / (1 - p)) / beta
        q = (1 - flip) * p + flip * (1 - p)  # probability that the observed label says y_w ≻ y_l
        n_given = round(100 * q)
        rows += [h] * n_given + [-h] * (100 - n_given)
    h = np.array(rows)
    state: dict = {}
    zeros = torch.zeros(len(h), dtype=torch.float64)
    for _ in range(150):  # each call is one training step on the whole batch: ε is folded after its loss
        pairwise_loss("lcpo", torch.tensor(h), zeros, zeros, zeros, state=state, beta=beta, epsilon=0.05)
    assert state["epsilon"] == pytest.approx(0.2, abs=0.02)


def test_lcpo_epsilon_update_by_hand():
    """One step: the loss uses the starting ε; afterwards ε = m·ε0 + (1 − m)·mean(1 − w) (numpy)."""
    h, beta, eps0, m = np.array([2.0, -1.0, 0.5, -3.0]), 0.7, 0.1, 0.9
    state: dict = {}
    zeros = torch.zeros(4, dtype=torch.float64)
    loss = pairwise_loss(
        "lcpo", torch.tensor(h), zeros, zeros, zeros, state=state, beta=beta, epsilon=eps0, epsilon_momentum=m
    )
    np.testing.assert_allclose(loss.numpy(), np_lcpo(h, beta, eps0), rtol=1e-12)
    p = 1 / (1 + np.exp(-beta * h))
    w = (1 - eps0) * p / ((1 - eps0) * p + eps0 * (1 - p))
    assert state["epsilon"] == pytest.approx(m * eps0 + (1 - m) * (1 - w).mean(), rel=1e-12)
