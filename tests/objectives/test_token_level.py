"""Section F objectives (tdpo1/2, dense_dpo, t_reg, modpo, dynamic_reward_scaling) against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.feedback import Feedback
from alignlab.data.records import pair
from alignlab.objectives import Objective, get
from alignlab.objectives.views import PairBatch
from alignlab.scoring.scores import Scores
from tests.objectives._refs_ef import np_logsig, np_sig, run, t, token_scores

# Two pairs, T = 4, ragged lengths (3 and 4 for chosen; 2 and 4 for rejected).
LW = np.array([[-0.5, -1.2, -0.3, 0.0], [-0.9, -0.4, -0.7, -1.1]])
LL = np.array([[-1.5, -0.2, 0.0, 0.0], [-0.6, -0.8, -1.9, -0.5]])
RW = np.array([[-0.7, -1.0, -0.6, 0.0], [-0.8, -0.9, -0.5, -1.0]])
RL = np.array([[-1.0, -0.6, 0.0, 0.0], [-0.7, -0.6, -1.2, -0.9]])
MW = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
ML = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
KW = np.array([[0.02, 0.10, 0.05, 9.0], [0.3, 0.0, 0.2, 0.1]])  # 9.0 sits on padding: must be ignored
KL = np.array([[0.40, 0.15, 7.0, 7.0], [0.05, 0.6, 0.1, 0.2]])


def _pair(grad=False, **extra_w):
    chosen = token_scores(LW, MW, RW, grad=grad, token_kl=t(KW, grad), **extra_w)
    rejected = token_scores(LL, ML, RL, grad=grad, token_kl=t(KL, grad))
    return PairBatch(chosen, rejected, torch.ones(2, dtype=torch.float64))


def _np_rho(lp, ref, m):
    return ((lp - ref) * m).sum(-1)


U = _np_rho(LW, RW, MW) - _np_rho(LL, RL, ML)
DW, DL = (KW * MW).sum(-1), (KL * ML).sum(-1)


@pytest.mark.parametrize("name,params", [("tdpo1", {"beta": 0.1}), ("tdpo2", {"beta": 0.3, "alpha": 0.7})])
def test_tdpo_value_and_kl_gradients(name, params):
    batch = _pair(grad=True)
    loss, metrics = run(name, batch, **params)
    beta = params["beta"]
    alpha = params.get("alpha", 1.0)
    z = U - alpha * (DL - DW)
    np.testing.assert_allclose(loss.detach().numpy(), -np_logsig(beta * z), rtol=1e-10)
    loss.sum().backward()
    # dL/dD_l at a real position = β·α·σ(-βz); padding gets nothing.
    expected_l = beta * alpha * np_sig(-beta * z)[:, None] * ML
    np.testing.assert_allclose(batch.rejected.token_kl.grad.numpy(), expected_l, rtol=1e-9, atol=1e-15)
    grad_w = batch.chosen.token_kl.grad
    if name == "tdpo2":  # stop-gradient on the chosen KL: no gradient reaches it at all
        assert grad_w is None or torch.all(grad_w == 0)
    else:
        np.testing.assert_allclose(
            grad_w.numpy(), -beta * np_sig(-beta * z)[:, None] * MW, rtol=1e-9, atol=1e-15
        )
    # policy token log-prob gradient: -β·σ(-βz) on chosen tokens
    np.testing.assert_allclose(
        batch.chosen.token_logps.grad.numpy(), -beta * np_sig(-beta * z)[:, None] * MW, rtol=1e-9, atol=1e-15
    )
    np.testing.assert_allclose(metrics["kl/rejected"].numpy(), DL)


def test_tdpo_at_init_is_log2_and_equals_dpo_without_kl():
    zeros = np.zeros_like(LW)
    chosen = token_scores(LW, MW, LW, token_kl=t(zeros))
    rejected = token_scores(LL, ML, LL, token_kl=t(zeros))
    batch = PairBatch(chosen, rejected, torch.ones(2, dtype=torch.float64))
    for name in ("tdpo1", "tdpo2"):
        loss, _ = run(name, batch)
        np.testing.assert_allclose(loss.numpy(), math.log(2), rtol=1e-12)
    batch = _pair()
    batch.chosen.token_kl = torch.zeros(2, 4, dtype=torch.float64)
    batch.rejected.token_kl = torch.zeros(2, 4, dtype=torch.float64)
    loss, _ = run("tdpo1", batch, beta=0.2)
    np.testing.assert_allclose(loss.numpy(), -np_logsig(0.2 * U), rtol=1e-12)


def test_tdpo_needs_token_kl_with_clear_error():
    batch = _pair()
    batch.chosen.token_kl = None
    with pytest.raises(ValueError, match="token_kl"):
        run("tdpo2", batch)
    assert {"reference", "token_kl"} <= get("tdpo1").needs


# ------------------------------------------------------------------------------- dense DPO
CW = np.array([[0, 1, 1, 0], [0, 0, 0, 0]], dtype=float)  # changed tokens of y_w (from spans)
CL = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=float)


def _np_ddpo_score(lp, m, changed, gamma, average=True):
    w = np.where(changed > 0, gamma, 1.0) * m
    total = (lp * w).sum(-1)
    return total / w.sum(-1) if average else total


@pytest.mark.parametrize("gamma,average", [(5.0, True), (3.0, False)])
def test_dense_dpo_value(gamma, average):
    batch = _pair()
    batch.chosen.token_weights = t(CW)
    batch.rejected.token_weights = t(CL)
    loss, _ = run("dense_dpo", batch, beta=0.5, gamma=gamma, average=average)
    rw = _np_ddpo_score(LW, MW, CW, gamma, average) - _np_ddpo_score(RW, MW, CW, gamma, average)
    rl = _np_ddpo_score(LL, ML, CL, gamma, average) - _np_ddpo_score(RL, ML, CL, gamma, average)
    np.testing.assert_allclose(loss.numpy(), -np_logsig(0.5 * (rw - rl)), rtol=1e-10)


def test_dense_dpo_gamma_one_or_no_changes_is_length_normalised_dpo():
    mean_rho = lambda lp, ref, m: ((lp - ref) * m).sum(-1) / m.sum(-1)  # noqa: E731
    expected = -np_logsig(0.5 * (mean_rho(LW, RW, MW) - mean_rho(LL, RL, ML)))
    batch = _pair()
    batch.chosen.token_weights = t(CW)
    batch.rejected.token_weights = t(CL)
    np.testing.assert_allclose(run("dense_dpo", batch, gamma=1.0)[0].numpy(), expected, rtol=1e-10)
    plain = _pair()  # no spans at all
    np.testing.assert_allclose(run("dense_dpo", plain, gamma=5.0)[0].numpy(), expected, rtol=1e-10)


# ------------------------------------------------------------------------------------ T-REG
def test_t_reg_value_with_given_token_rewards_and_alpha_zero_is_dpo():
    r_w = np.array([[0.5, -1.0, 2.0, 3.0], [0.1, 0.2, -0.3, 0.4]])
    r_l = np.array([[-2.0, 1.0, 5.0, 5.0], [0.3, -0.1, -0.2, 0.6]])
    batch = _pair()
    batch.chosen.extra["token_rewards"] = t(r_w)
    batch.rejected.extra["token_rewards"] = t(r_l)
    beta, alpha = 0.2, 0.8

    def reg(r, lp, ref, m):
        r = r * m
        r_hat = r / (np.abs(r).sum(-1) / m.sum(-1))[:, None]
        return -np_logsig(beta * (r_hat * (lp - ref) * m).sum(-1))

    dpo = -np_logsig(beta * U)
    expected = dpo + alpha * 0.5 * (reg(r_w, LW, RW, MW) + reg(r_l, LL, RL, ML))
    np.testing.assert_allclose(run("t_reg", batch, beta=beta, alpha=alpha)[0].numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(run("t_reg", batch, beta=beta, alpha=0.0)[0].numpy(), dpo, rtol=1e-12)


def test_t_reg_prepare_and_contrastive_scorings_through_the_pipeline():
    record = pair("Q?", "good answer", "bad answer")
    record.ranking = [1, 0]  # the second completion is preferred: prepare must put it first
    (out,) = get("t_reg").prepare([record], better_prompt="B:", worse_prompt="W:")
    assert out.completions == ["bad answer", "good answer"] * 3
    assert out.ranking == [0, 1, 0, 1, 0, 1]
    assert out.roles == ["", "", "treg_better", "treg_better", "treg_worse", "treg_worse"]
    assert out.context_prefixes == [None, None, "B:", "B:", "W:", "W:"]
    # Flat scores of the six completions; token rewards = better - worse scorings of the same tokens.
    lp = np.array([LW[0], LL[0], LW[0] + 0.3, LL[0] - 0.2, LW[0] - 0.1, LL[0] + 0.4])
    masks = np.array([MW[0], ML[0], MW[0], ML[0], MW[0], ML[0]])
    ref = np.array([RW[0], RL[0]] * 3)
    flat = token_scores(lp, masks, ref)
    fb = Feedback(
        group_index=torch.zeros(6, dtype=torch.long),
        weight=torch.ones(1),
        ranks=torch.tensor([0.0, 1, 0, 1, 0, 1]),
        roles=out.roles,
    )
    loss, _ = Objective.from_config({"name": "t_reg", "beta": 0.1, "alpha": 1.0})(flat, fb)
    beta = 0.1
    r_w, r_l = np.full(4, 0.4) * MW[0], np.full(4, -0.6) * ML[0]

    def reg(r, lpv, refv, m):
        r_hat = r / (np.abs(r).sum() / m.sum())
        return -np_logsig(beta * (r_hat * (lpv - refv) * m).sum())

    expected = -np_logsig(beta * U[0]) + 0.5 * (reg(r_w, LW[0], RW[0], MW[0]) + reg(r_l, LL[0], RL[0], ML[0]))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-10)


# ------------------------------------------------------------------------------------ MODPO
def _ratings_pair(lw, ll, rw_ref, rl_ref, Rw, Rl):
    chosen = Scores.from_logps(t(lw), ref_logps=t(rw_ref), ratings=t(Rw))
    rejected = Scores.from_logps(t(ll), ref_logps=t(rl_ref), ratings=t(Rl))
    return PairBatch(chosen, rejected, torch.ones(len(lw), dtype=torch.float64))


def test_modpo_value_hinge_and_reduction_to_dpo():
    lw, ll, rw, rl = [-3.0, -5.0], [-4.0, -2.5], [-3.5, -4.0], [-3.0, -3.0]
    Rw, Rl = [[1.0, 0.2], [0.0, -1.0]], [[0.3, 0.5], [0.4, 2.0]]
    batch = _ratings_pair(lw, ll, rw, rl, Rw, Rl)
    beta, w = 0.2, [0.5, 0.3, 0.2]
    h_w = beta * (np.array(lw) - rw) - np.array(Rw) @ w[1:]
    h_l = beta * (np.array(ll) - rl) - np.array(Rl) @ w[1:]
    logits = (h_w - h_l) / w[0]
    loss, metrics = run("modpo", batch, beta=beta, weights="0.5,0.3,0.2")
    np.testing.assert_allclose(loss.numpy(), -np_logsig(logits), rtol=1e-12)
    np.testing.assert_allclose(metrics["rewards/chosen"].numpy(), h_w / w[0], rtol=1e-12)
    hinge, _ = run("modpo", batch, beta=beta, weights="0.5,0.3,0.2", loss_type="hinge")
    np.testing.assert_allclose(hinge.numpy(), np.maximum(0, 1 - logits), rtol=1e-12)
    dpo_like, _ = run("modpo", batch, beta=beta, weights="1,0,0")
    np.testing.assert_allclose(
        dpo_like.numpy(), -np_logsig(beta * ((np.array(lw) - rw) - (np.array(ll) - rl))), rtol=1e-12
    )
    with pytest.raises(ValueError, match="margin reward"):
        run("modpo", batch, weights="0.5,0.5")


def test_modpo_optimum_is_the_collective_reward_in_a_tabular_world():
    """One prompt, 3 completions, BT preferences from r0, margin reward R1. The exact expected MODPO
    loss over all ordered pairs is minimised at β·log(π/π_ref) = w0·r0 + w1·R1 + const."""
    r0 = torch.tensor([1.0, 0.0, -0.5], dtype=torch.float64)
    R1 = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    ref = torch.log_softmax(torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64), 0)
    beta, w0, w1 = 0.5, 0.6, 0.4
    idx_c, idx_r = zip(*[(i, j) for i in range(3) for j in range(3) if i != j], strict=True)
    idx_c, idx_r = torch.tensor(idx_c), torch.tensor(idx_r)
    prob = torch.sigmoid(r0[idx_c] - r0[idx_r])  # P(c ≻ r): weight of that ordered pair
    logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logits], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(logits, 0)
        batch = PairBatch(
            Scores.from_logps(logp[idx_c], ref_logps=ref[idx_c], ratings=R1[idx_c, None]),
            Scores.from_logps(logp[idx_r], ref_logps=ref[idx_r], ratings=R1[idx_r, None]),
            prob,
        )
        loss = (run("modpo", batch, beta=beta, weights=f"{w0},{w1}")[0] * prob).sum()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    expected = torch.softmax(ref + (w0 * r0 + w1 * R1) / beta, 0)
    got = torch.softmax(logits.detach(), 0)
    assert 0.5 * (got - expected).abs().sum() < 1e-4


# --------------------------------------------------------------------- dynamic reward scaling
def test_dynamic_reward_scaling_value_bounds_and_w_zero_is_dpo():
    lw, ll, rw, rl = (
        np.array([-3.0, -5.0, -1.0]),
        np.array([-4.0, -2.5, -2.0]),
        [-3.5, -4.0, -1.0],
        [-3.0, -3.0, -1.5],
    )
    delta = np.array([0.0, 1.0, 6.0])
    chosen = Scores.from_logps(t(lw), ref_logps=t(rw))
    rejected = Scores.from_logps(t(ll), ref_logps=t(rl))
    batch = PairBatch(chosen, rejected, torch.ones(3, dtype=torch.float64), margin=t(delta))
    h = (lw - rw) - (ll - rl)
    beta0, w, k = 0.1, 0.5, 0.5
    b = beta0 * (1 + w * (1 - np.exp(-k * delta)))
    loss, metrics = run("dynamic_reward_scaling", batch, beta=beta0, w=w, k=k)
    np.testing.assert_allclose(loss.numpy(), -np_logsig(b * h), rtol=1e-12)
    betas = metrics["beta"].numpy()
    assert np.all(np.diff(betas) > 0) and np.all(betas <= beta0 * (1 + w))
    np.testing.assert_allclose(run("dynamic_reward_scaling", batch, w=0.0)[0].numpy(), -np_logsig(0.1 * h))
    batch.margin = None
    with pytest.raises(ValueError, match="margin"):
        run("dynamic_reward_scaling", batch)
