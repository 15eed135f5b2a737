"""Section E reference-free objectives (tpo_triple, asft, aft, poft, raft, superhf) against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.feedback import Feedback
from alignlab.data.records import Record, RecordError
from alignlab.objectives import Objective, get
from alignlab.objectives.views import ListBatch, PairBatch, PointBatch
from alignlab.scoring.scores import Scores
from tests.objectives._refs_ef import np_logsig, run, t, token_scores

LW, LL, LG = np.array([-12.0, -30.0]), np.array([-15.0, -20.0]), np.array([-8.0, -25.0])
NW, NL, NG = np.array([4.0, 10.0]), np.array([5.0, 8.0]), np.array([2.0, 10.0])


def _tpo_batch(gold_rows=(True, True)):
    chosen = Scores.from_logps(t(LW, True), t(NW))
    rejected = Scores.from_logps(t(LL, True), t(NL))
    gold = Scores.from_logps(t(LG[:, None], True), t(NG[:, None]))
    mask = torch.tensor([[g] for g in gold_rows])
    return PairBatch(
        chosen, rejected, torch.ones(2, dtype=torch.float64), aux={"gold": gold}, aux_mask={"gold": mask}
    )


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge", "ipo", "tpo-l"])
def test_tpo_triple_value_per_loss_type(loss_type):
    beta, alpha, gamma, eps = 0.05, 0.7, 0.3, 0.1
    loss, metrics = run(
        "tpo_triple",
        _tpo_batch(),
        beta=beta,
        alpha=alpha,
        loss_type=loss_type,
        gamma=gamma,
        label_smoothing=eps,
    )
    d_sum, d_mean = LW - LL, LW / NW - LL / NL
    pref = {
        "sigmoid": -(1 - eps) * np_logsig(beta * d_sum) - eps * np_logsig(-beta * d_sum),
        "hinge": np.maximum(0, 1 - beta * d_sum),
        "ipo": (d_mean - 1 / (2 * beta)) ** 2,
        "tpo-l": -(1 - eps) * np_logsig(beta * d_mean - gamma) - eps * np_logsig(-(beta * d_mean - gamma)),
    }[loss_type]
    np.testing.assert_allclose(loss.detach().numpy(), pref + alpha * (-LG / NG), rtol=1e-12)
    np.testing.assert_allclose(metrics["rewards/margins"].numpy(), beta * d_sum)


def test_tpo_triple_gradient_and_gold_fallback():
    batch = _tpo_batch(gold_rows=(True, False))
    beta, alpha = 0.1, 1.0
    loss, _ = run("tpo_triple", batch, beta=beta, alpha=alpha)
    gold_nll = np.array([-LG[0] / NG[0], -LW[1] / NW[1]])  # row 2 has no gold: imitate the chosen answer
    np.testing.assert_allclose(loss.detach().numpy(), -np_logsig(beta * (LW - LL)) + gold_nll, rtol=1e-12)
    loss.sum().backward()
    s = 1 / (1 + np.exp(beta * (LW - LL)))  # σ(-βΔ)
    expected_w = -beta * s + np.array([0.0, -1 / NW[1]])
    np.testing.assert_allclose(batch.chosen.logps.grad.numpy(), expected_w, rtol=1e-10)
    np.testing.assert_allclose(batch.aux["gold"].logps.grad.numpy()[:, 0], [-1 / NG[0], 0.0], rtol=1e-10)


def test_tpo_alpha_zero_limits():
    """α = 0: sigmoid TPO is reference-free DPO; TPO-L is SimPO (margin γ on mean log-probs)."""
    batch = _tpo_batch()
    np.testing.assert_allclose(
        run("tpo_triple", batch, alpha=0.0, beta=0.2)[0].detach().numpy(),
        -np_logsig(0.2 * (LW - LL)),
        rtol=1e-12,
    )
    simpo = -np_logsig(2.0 * (LW / NW - LL / NL) - 0.5)
    got = run("tpo_triple", batch, alpha=0.0, beta=2.0, loss_type="tpo-l", gamma=0.5)[0]
    np.testing.assert_allclose(got.detach().numpy(), simpo, rtol=1e-12)


def test_tpo_prepare_builds_triples_from_rankings():
    record = Record("Q", ["c", "best", "worst", "second"], ranking=[2, 0, 3, 1], id="r1")
    (out,) = get("tpo_triple").prepare([record])
    assert out.completions == ["second", "worst", "best"]
    assert out.ranking == [0, 1, 0] and out.roles == ["", "", "gold"] and out.id == "r1"
    pair = Record("Q", ["a", "b"], ranking=[0, 1])
    assert get("tpo_triple").prepare([pair]) == [pair]


# ------------------------------------------------------------------------------------ ASFT
def test_asft_value_and_closed_form_gradients():
    mw, ml = np.array([-0.3, -1.2]), np.array([-0.05, -2.0])
    batch = PairBatch(
        Scores.from_logps(t(mw, True)), Scores.from_logps(t(ml, True)), torch.ones(2, dtype=torch.float64)
    )
    lam = 0.3
    loss, _ = run("asft", batch, lam=lam)
    expected = -mw + lam * (-mw - np.log(1 - np.exp(ml)))
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-10)
    loss.sum().backward()
    np.testing.assert_allclose(batch.chosen.logps.grad.numpy(), -(1 + lam) * np.ones(2), rtol=1e-10)
    pl = np.exp(ml)
    np.testing.assert_allclose(batch.rejected.logps.grad.numpy(), lam * pl / (1 - pl), rtol=1e-8)


def test_asft_rejected_term_decouples_and_vanishes_as_probability_falls():
    def value(ml):
        batch = PairBatch(Scores.from_logps(t([-0.5])), Scores.from_logps(t([ml])), torch.ones(1))
        return float(run("asft", batch, lam=1.0)[0])

    base = 0.5 + 0.5  # -ℓ̄_w (NLL) + λ·(-ℓ̄_w)
    assert value(-30.0) == pytest.approx(base, abs=1e-10)  # P̄(y_l) → 0: no rejected penalty left
    assert value(-0.01) > value(-1.0) > value(-5.0) > base


# ------------------------------------------------------------------------------------- AFT
S = np.array([[-0.5, -0.9, -0.4, -2.0], [-1.0, -0.2, -3.0, -0.7]])
RANKS = np.array([[0, 0, 1, 1], [0, 1, 2, np.inf]])
MASK = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=bool)


def _aft_batch():
    items = Scores.from_logps(t(S, True))
    return ListBatch(items, torch.tensor(RANKS), torch.tensor(MASK), torch.ones(2, dtype=torch.float64))


def _np_aft(margin, weight):
    out = []
    for s, r, m in zip(S, RANKS, MASK, strict=True):
        pairs = [(i, j) for i in range(4) for j in range(4) if m[i] and m[j] and r[i] < r[j]]
        la = math.log1p(sum(math.exp(s[j] - s[i]) for i, j in pairs))
        best = min(r[m])
        pos = [i for i in range(4) if m[i] and r[i] == best]
        neg = [i for i in range(4) if m[i] and r[i] != best]
        b = min(s[p] for p in pos) - margin
        out.append(la + weight * sum(max(0.0, b - s[n]) for n in neg))
    return np.array(out)


def test_aft_value_and_constraint_gradient():
    batch = _aft_batch()
    loss, _ = run("aft", batch, boundary_margin=0.8, constraint_weight=2.0)
    np.testing.assert_allclose(loss.detach().numpy(), _np_aft(0.8, 2.0), rtol=1e-10)
    # none = alignment only; the -2.0 negative sits below B = -0.9 - 0.8 in group 1, -3.0 in group 2
    np.testing.assert_allclose(
        run("aft", _aft_batch(), constraint="none")[0].detach().numpy(), _np_aft(0, 0.0)
    )
    # detach: negatives get no gradient from the alignment term
    batch = _aft_batch()
    run("aft", batch, constraint="detach")[0].sum().backward()
    grad = batch.items.logps.grad.numpy()
    assert grad[0, 2] == 0 and grad[0, 3] == 0 and grad[0, 0] < 0


def test_aft_no_negatives_is_zero_and_constraint_inactive_above_boundary():
    items = Scores.from_logps(t([[-0.5, -0.7]], True))
    batch = ListBatch(items, torch.tensor([[0.0, 0.0]]), torch.tensor([[True, True]]), torch.ones(1))
    assert float(run("aft", batch)[0].detach()) == 0.0
    items = Scores.from_logps(t([[-0.5, -0.6]], True))  # negative above B = -0.5 - 0.5
    batch = ListBatch(items, torch.tensor([[0.0, 1.0]]), torch.tensor([[True, True]]), torch.ones(1))
    loss_b = run("aft", batch)[0].detach()
    loss_n = run("aft", batch, constraint="none")[0].detach()
    assert float(loss_b) == pytest.approx(float(loss_n))
    assert get("aft").prepare([Record("Q", ["a", "b", "c"], labels=[True, False, True])])[0].ranking == [
        0,
        1,
        0,
    ]


# ------------------------------------------------------------------------------------ PoFT
def test_poft_value_and_nan_anchors():
    ratings = np.array([[-1.0, -2.0], [-0.5, np.nan]])
    items = Scores.from_logps(t([-6.0, -4.0], True), t([4.0, 2.0]), ratings=t(ratings))
    batch = PointBatch(items, torch.ones(2, dtype=torch.float64))
    loss, metrics = run("poft", batch, beta=2.0)
    mean = np.array([-1.5, -2.0])
    expected = [
        -(np_logsig(2 * (mean[0] + 1)) + np_logsig(2 * (mean[0] + 2))) / 2,
        -np_logsig(2 * (mean[1] + 0.5)),
    ]
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-12)
    same = PointBatch(Scores.from_logps(t([-3.0]), t([2.0]), ratings=t([[-1.5]])), torch.ones(1))
    assert float(run("poft", same)[0]) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="aligned"):
        run("poft", PointBatch(Scores.from_logps(t([-1.0])), torch.ones(1)))


# ----------------------------------------------------------------------------- RAFT, SuperHF
def test_raft_prepare_selects_best_by_reward_or_ranking():
    by_reward = Record(
        "Q", ["a", "b", "c"], scores=[{"reward": 0.1}, {"reward": 0.9}, {"reward": 0.5}], weight=2.0
    )
    by_rank = Record("P", ["x", "y"], ranking=[1, 0])
    out = get("raft").prepare([by_reward, by_rank])
    assert [(r.prompt, r.completions, r.weight) for r in out] == [("Q", ["b"], 2.0), ("P", ["y"], 1.0)]
    assert out[0].ranking is None and out[0].scores is None
    multi = Record("Q", ["a", "b"], scores=[{"r": 1.0, "len": 3.0}, {"r": 0.0, "len": 9.0}])
    with pytest.raises(RecordError, match="score_key"):
        get("raft").prepare([multi])
    assert get("raft").prepare([multi], score_key="len")[0].completions == ["b"]


def test_raft_and_superhf_losses():
    lp = np.array([[-0.5, -1.5, 0.0], [-0.2, -0.3, -0.4]])
    mask = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    kl = np.array([[0.2, 0.4, 5.0], [0.1, 0.0, 0.3]])
    items = token_scores(lp, mask)
    items.token_kl_reverse = t(kl)
    batch = PointBatch(items, torch.ones(2, dtype=torch.float64))
    nll = -(lp * mask).sum(-1) / mask.sum(-1)
    np.testing.assert_allclose(run("raft", batch)[0].numpy(), nll, rtol=1e-12)
    mean_kl = (kl * mask).sum(-1) / mask.sum(-1)
    np.testing.assert_allclose(
        run("superhf", batch, kl_coef=0.35)[0].numpy(), nll + 0.35 * mean_kl, rtol=1e-12
    )
    np.testing.assert_allclose(run("superhf", batch, kl_coef=0.0)[0].numpy(), nll, rtol=1e-12)


def test_raft_through_compose_trains_on_the_selected_samples_only():
    """Flat scores of 3 completions in one group; after prepare the data path gives K = 1 demonstrations,
    so the composed loss is the token-mean NLL of the kept completions."""
    scores = Scores.from_logps(t([-4.0, -9.0]), t([2.0, 3.0]))
    fb = Feedback(group_index=torch.tensor([0, 1]), weight=torch.tensor([1.0, 3.0]))
    loss, _ = Objective.from_config("raft")(scores, fb)
    assert float(loss) == pytest.approx((2.0 * 1 + 3.0 * 3) / 4)
