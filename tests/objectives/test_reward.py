"""Reward objectives against numpy / closed forms computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.records import pair
from alignlab.objectives.registry import get
from alignlab.objectives.reward_multi import min_norm_weights, more_tag_tasks, pair_pm_records
from alignlab.objectives.views import ListBatch, PairBatch
from alignlab.scoring.scores import Scores


def _pairs(rw, rl, margin=None, hidden_w=None, hidden_l=None, ratings=None):
    rw, rl = torch.tensor(rw, dtype=torch.float64), torch.tensor(rl, dtype=torch.float64)
    z = torch.zeros_like(rw)
    cw = Scores(logps=z, lengths=z + 1, rewards=rw, hidden=hidden_w, ratings=ratings)
    cl = Scores(logps=z, lengths=z + 1, rewards=rl, hidden=hidden_l, ratings=ratings)
    m = None if margin is None else torch.tensor(margin, dtype=torch.float64)
    return PairBatch(cw, cl, torch.ones_like(rw), m)


def _np_logsig(x):
    return -np.log1p(np.exp(-x))


def run(name, batch, **params):
    out = get(name).fn(batch, **params)
    return (out[0] if isinstance(out, tuple) else out).numpy()


RW, RL = [1.5, -0.3, 0.2, 2.0], [0.5, 0.4, 0.2, -1.0]


def test_bt_matches_numpy_and_is_log2_at_ties():
    d = np.array(RW) - np.array(RL)
    assert np.allclose(run("bt", _pairs(RW, RL)), -_np_logsig(d))
    assert run("bt", _pairs([0.7], [0.7]))[0] == pytest.approx(math.log(2))
    shifted = _pairs(np.array(RW) + 3.0, np.array(RL) + 3.0)
    assert np.allclose(run("bt", shifted), -_np_logsig(d))


def test_bt_margin_center_and_smoothing():
    m = [1.0, 0.0, 0.5, 3.0]
    d = np.array(RW) - np.array(RL)
    assert np.allclose(run("bt_margin", _pairs(RW, RL, m)), -_np_logsig(d - np.array(m)))
    assert np.allclose(run("bt", _pairs(RW, RL, m), use_margin=True), -_np_logsig(d - np.array(m)))
    assert run("bt_margin", _pairs([2.0], [1.0], [1.0]))[0] == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="margin"):
        run("bt_margin", _pairs(RW, RL))
    center = -_np_logsig(d) + 0.01 * (np.array(RW) + np.array(RL)) ** 2
    assert np.allclose(run("bt_center", _pairs(RW, RL)), center)
    eps = 0.1
    smooth = -(1 - eps) * _np_logsig(d) - eps * _np_logsig(-d)
    assert np.allclose(run("bt_label_smoothing", _pairs(RW, RL)), smooth)


def test_label_smoothing_optimum_is_finite():
    eps = 0.1
    gap = torch.tensor([math.log((1 - eps) / eps)], dtype=torch.float64, requires_grad=True)
    batch = _pairs([0.0], [0.0])
    batch.chosen.rewards = gap
    loss = torch.as_tensor(get("bt_label_smoothing").fn(batch, epsilon=eps)[0]).sum()
    loss.backward()
    assert abs(float(gap.grad)) < 1e-12
    assert math.log(0.9 / 0.1) == pytest.approx(2.1972, abs=1e-4)


def test_eurus_adds_absolute_term():
    rw, rl = np.array(RW), np.array(RL)
    want = -_np_logsig(rw - rl) - _np_logsig(rw) - _np_logsig(-rl)
    assert np.allclose(run("eurus_rm", _pairs(RW, RL)), want)
    assert run("eurus_rm", _pairs([0.0], [0.0]))[0] == pytest.approx(3 * math.log(2))
    assert not np.allclose(run("eurus_rm", _pairs(rw + 1, rl + 1)), want)  # not shift-invariant


def test_gpm_rock_paper_scissors_and_antisymmetry():
    angles = [0.0, 2 * math.pi / 3, 4 * math.pi / 3]
    v = torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)
    from alignlab.scoring.gpm import gpm_score

    cycle = gpm_score(v[[0, 1, 2]], v[[1, 2, 0]])
    assert torch.allclose(cycle, torch.full((3,), math.sin(2 * math.pi / 3), dtype=torch.float64))
    assert torch.allclose(gpm_score(v[[1, 2, 0]], v[[0, 1, 2]]), -cycle)
    assert torch.allclose(gpm_score(v, v), torch.zeros(3, dtype=torch.float64))
    batch = _pairs([0.0] * 3, [0.0] * 3)
    batch.chosen.rewards, batch.rejected.rewards = v[[0, 1, 2]], v[[1, 2, 0]]
    loss = run("gpm", batch, tau=0.5)
    assert np.allclose(loss, -_np_logsig(np.sin(2 * np.pi / 3) / 0.5))
    # 4-d: blocks add up (numpy)
    a, b = np.random.default_rng(0).normal(size=(2, 5, 4))
    want = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] + a[:, 2] * b[:, 3] - a[:, 3] * b[:, 2]
    assert np.allclose(gpm_score(torch.tensor(a), torch.tensor(b)).numpy(), want)


def test_armorm_masked_regression():
    r = torch.tensor([[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [9.0, 9.0]]])
    s = torch.tensor([[[2.0, float("nan")], [0.0, 3.0]], [[1.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    items = Scores(logps=torch.zeros(2, 2), lengths=torch.ones(2, 2), rewards=r, ratings=s)
    batch = ListBatch(items, torch.zeros(2, 2), mask, torch.ones(2), ["a", "b"])
    out = run("armorm", batch)
    assert np.allclose(out, [(1 + 0 + 4) / 3, (4 + 1) / 2])


def test_min_norm_two_and_three_vectors():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    lam = min_norm_weights(g)
    g1, g2 = g.numpy()
    gamma = g2 @ (g2 - g1) / ((g1 - g2) @ (g1 - g2))
    assert np.allclose(lam.numpy(), [gamma, 1 - gamma], atol=1e-6)
    rng = np.random.default_rng(0)
    g3 = rng.normal(size=(3, 4))
    best = min(
        ((a, b) for a in np.linspace(0, 1, 201) for b in np.linspace(0, 1, 201) if a + b <= 1),
        key=lambda ab: np.linalg.norm(ab[0] * g3[0] + ab[1] * g3[1] + (1 - ab[0] - ab[1]) * g3[2]),
    )
    lam3 = min_norm_weights(torch.tensor(g3)).numpy()
    norm = lambda w: np.linalg.norm(w @ g3)  # noqa: E731
    assert norm(lam3) <= norm(np.array([best[0], best[1], 1 - sum(best)])) + 1e-3
    assert lam3.min() >= -1e-9 and lam3.sum() == pytest.approx(1.0)


def more_train(batch, state, **params):
    """One training call of MORE on ``batch`` as a whole step: λ folded from the batch, then the loss."""
    spec = get("more")
    full = spec.check_params(params)
    spec.step_statistics.fold_batch(batch, full, state)
    return spec.fn(batch, state=state, **spec.loss_kwargs(full))


def test_more_one_task_is_bt_and_two_tasks_use_min_norm_weights():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    hl = torch.zeros_like(h)
    one = _pairs([0.5, 0.1, -0.2], [0.0, 0.0, 0.0], hidden_w=h, hidden_l=hl, ratings=torch.zeros(3, 1))
    d = np.array([0.5, 0.1, -0.2])
    assert np.allclose(more_train(one, {})[0].numpy(), -_np_logsig(d))
    tasks = torch.tensor([[0.0], [1.0], [1.0]])
    two = _pairs([0.5, 0.1, -0.2], [0.0, 0.0, 0.0], hidden_w=h, hidden_l=hl, ratings=tasks)
    state: dict = {}
    loss, metrics = more_train(two, state)
    coef = -1 / (1 + np.exp(d))  # −σ(−Δ)
    g0 = coef[0] * h[0].numpy()
    g1 = (coef[1] * h[1].numpy() + coef[2] * h[2].numpy()) / 2
    gamma = g1 @ (g1 - g0) / ((g0 - g1) @ (g0 - g1))
    gamma = min(max(gamma, 0), 1)
    weights = np.array([gamma, 1 - gamma, 1 - gamma]) * 2
    assert np.allclose(loss.numpy(), weights * -_np_logsig(d), atol=1e-6)
    assert float(metrics["more/lambda_0"]) == pytest.approx(gamma, abs=1e-6)
    # Evaluation (no fold) reads the training step's weights; a task that step did not see weighs 1.
    unseen = _pairs(
        [0.5, 0.1], [0.0, 0.0], hidden_w=h[:2], hidden_l=hl[:2], ratings=torch.tensor([[1.0], [5.0]])
    )
    eval_loss = get("more").fn(unseen, state=state)[0].numpy()
    assert np.allclose(eval_loss, [2 * (1 - gamma), 1.0] * -_np_logsig(d[:2]), atol=1e-6)


def test_more_tags_datasets_and_pair_pm_builds_both_orders():
    recs = [pair("x", "a", "b", source="hh"), pair("y", "c", "d", source="shp")]
    tagged = more_tag_tasks(recs)
    assert [r.scores[0]["__more_task"] for r in tagged] == [0.0, 1.0]
    out = pair_pm_records([pair("x", "good one", "bad one")], template="{prompt}|{a}|{b}")
    assert [r.prompt for r in out] == ["x|good one|bad one", "x|bad one|good one"]
    assert [r.ranking for r in out] == [[0, 1], [1, 0]] and out[0].completions == ["A", "B"]


def test_pair_pm_and_genarm_losses():
    batch = _pairs([0.0, 0.0], [0.0, 0.0])
    batch.chosen.logps = torch.tensor([-1.0, -3.0], dtype=torch.float64)
    batch.rejected.logps = torch.tensor([-2.0, -0.5], dtype=torch.float64)
    d = np.array([1.0, -2.5])
    assert np.allclose(run("pair_pm", batch), -_np_logsig(d))
    assert np.allclose(run("genarm", batch, beta_r=0.5), -_np_logsig(0.5 * d))


def test_multi_output_head_is_rejected_by_bt():
    batch = _pairs([0.0], [0.0])
    batch.chosen.rewards = torch.zeros(1, 3)
    batch.rejected.rewards = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="num_attributes"):
        run("bt", batch)
