"""elo_bt against scipy's L-BFGS-B on FastChat's loss, planted strengths recovered within the interval, and
the online Elo update by hand."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.eval.registry import MetricError, run_metric


def _battles(strengths, n, seed=0, tie_rate=0.0):
    rng = np.random.default_rng(seed)
    names = list(strengths)
    a, b, w = [], [], []
    for _ in range(n):
        i, j = rng.choice(len(names), 2, replace=False)
        p = 1 / (1 + 10 ** ((strengths[names[j]] - strengths[names[i]]) / 400))
        u = rng.random()
        a.append(names[i])
        b.append(names[j])
        w.append("tie" if u < tie_rate else "model_a" if rng.random() < p else "model_b")
    return a, b, w


def test_mle_matches_scipy_on_fastchat_loss():
    optimize = pytest.importorskip("scipy.optimize")
    a, b, w = _battles({"x": 0, "y": 80, "z": 150, "t": 40}, 400, seed=1, tie_rate=0.2)
    result = run_metric("elo_bt", model_a=a, model_b=b, winner=w, rounds=5)
    names = sorted(set(a) | set(b))
    idx = {m: k for k, m in enumerate(names)}
    pairs = np.array([[idx[x], idx[y]] for x, y in zip(a, b)])
    y = np.array([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[v] for v in w])

    def loss(r):  # FastChat bt_loss_and_grad with alpha = ln 10
        logits = np.log(10) * (r[pairs[:, 0]] - r[pairs[:, 1]])
        q = 1 / (1 + np.exp(-logits))
        g = -np.log(10) * (y - q)
        grad = np.zeros_like(r)
        np.add.at(grad, pairs[:, 0], g)
        np.add.at(grad, pairs[:, 1], -g)
        return -np.sum(y * np.log(q) + (1 - y) * np.log(1 - q)), grad

    r = optimize.minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    expected = 400 * r + 1000
    got = np.array([result[f"rating/{m}"].value for m in names])
    assert got == pytest.approx(expected, abs=1e-3)
    assert got.mean() == pytest.approx(1000)


def test_planted_strengths_recovered_within_interval():
    # METHODS.md elo_bt: strengths [0, 100, 200] Elo, 20k games -> differences within ±10.
    planted = {"a": 0.0, "b": 100.0, "c": 200.0}
    a, b, w = _battles(planted, 20_000, seed=7)
    result = run_metric("elo_bt", model_a=a, model_b=b, winner=w, rounds=100, anchor={"a": 0.0})
    for name, value in planted.items():
        est = result[f"rating/{name}"]
        assert abs(est.value - value) < 10, name
        if name != "a":
            lo, hi = est.interval
            assert lo <= value <= hi, (name, lo, hi)
    assert all(c["different"] for c in result.details["comparisons"])


def test_close_models_are_not_called_different():
    a, b, w = _battles({"p": 0.0, "q": 5.0}, 200, seed=3)
    result = run_metric("elo_bt", model_a=a, model_b=b, winner=w, rounds=200)
    (comparison,) = result.details["comparisons"]
    assert comparison["different"] is False


def test_online_elo_by_hand():
    result = run_metric(
        "elo_bt", model_a=["a", "a"], model_b=["b", "b"], winner=["model_a", "tie"], method="online", rounds=3
    )
    ra, rb = 1000 + 4 * 0.5, 1000 - 4 * 0.5  # first battle: E = 0.5, a wins
    ea = 1 / (1 + 10 ** ((rb - ra) / 400))
    ra, rb = ra + 4 * (0.5 - ea), rb - 4 * (0.5 - ea)
    assert result["rating/a"].value == pytest.approx(ra)
    assert result["rating/b"].value == pytest.approx(rb)


def test_bad_battles_named():
    with pytest.raises(MetricError, match=r"1 of 2 battles invalid \(winner not one of .*record 1"):
        run_metric("elo_bt", model_a=["a", "a"], model_b=["b", "b"], winner=["model_a", "draw"])
