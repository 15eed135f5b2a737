"""Pointwise / unpaired / rating-weighted objectives against numpy formulas, limits and a tabular world."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.records import Record
from alignlab.objectives import get
from alignlab.objectives.pointwise import kto_prepare
from tests.objectives._refs_listpoint import list_batch, np_dpo, numeric_grad, point_batch, softplus


def fn(name):
    return get(name).fn


def loss_of(out):
    return out[0] if isinstance(out, tuple) else out


def sig(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------------------------------------ KTO
def np_kto(logps, ref, labels, kl_logps, kl_ref, beta, wd, wu):
    z0 = max(0.0, float(np.mean(np.asarray(kl_logps) - kl_ref)))
    rho = np.asarray(logps) - ref
    return np.where(
        np.asarray(labels) > 0.5, wd * (1 - sig(beta * (rho - z0))), wu * (1 - sig(beta * (z0 - rho)))
    )


def test_kto_value_grad_and_reference_point():
    logps, ref, labels = np.array([-1.0, -2.0, -3.0]), np.array([-1.5, -1.0, -2.0]), [1.0, 0.0, 0.0]
    kl_logps, kl_ref = np.array([-2.0, -0.5, -1.0]), np.array([-3.0, -1.0, -1.2])  # mean ratio 0.5667
    aux = {"kl": (kl_logps[:, None], kl_ref[:, None], np.ones((3, 1)))}
    batch = point_batch(logps, ref, labels, aux=aux)
    loss, metrics = fn("kto")(batch, beta=0.5, desirable_weight=1.3, undesirable_weight=0.7)
    expected = np_kto(logps, ref, labels, kl_logps, kl_ref, 0.5, 1.3, 0.7)
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-12)
    assert metrics["kl"].item() == pytest.approx(np.mean(kl_logps - kl_ref))
    loss.sum().backward()
    grad = numeric_grad(lambda x: np_kto(x, ref, labels, kl_logps, kl_ref, 0.5, 1.3, 0.7).sum(), logps)
    np.testing.assert_allclose(batch.items.logps.grad.numpy(), grad, atol=1e-7)


def test_kto_reference_point_clamped_counted_once_per_record_and_init_half():
    # Two rows of one record share its kl completion: z0 averages records, not rows; negative -> 0.
    aux = {"kl": ([[-2.0], [-2.0], [-1.0]], [[-1.0], [-1.0], [-1.5]], np.ones((3, 1)))}
    batch = point_batch([-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0], [1.0, 0.0, 1.0], aux=aux, groups=[0, 0, 1])
    loss, metrics = fn("kto")(batch, desirable_weight=2.0)
    assert metrics["kl"].item() == 0.0  # mean(-1, 0.5) < 0
    np.testing.assert_allclose(loss.detach().numpy(), [1.0, 0.5, 1.0])  # λ/2 at ρ = 0, z0 = 0
    aux2 = {"kl": ([[0.0], [0.0], [2.0]], [[-1.0], [-1.0], [0.0]], np.ones((3, 1)))}
    b2 = point_batch([-1.0] * 3, [-1.0] * 3, [1.0, 0.0, 1.0], aux=aux2, groups=[0, 0, 1])
    assert fn("kto")(b2)[1]["kl"].item() == pytest.approx(1.5)  # (1 + 2) / 2, not (1 + 1 + 2) / 3


def test_kto_prepare_adds_previous_records_completion():
    recs = [
        Record(prompt="p0", completions=["a0"], labels=[True]),
        Record(prompt="p1", completions=["a1", "b1"], labels=[False, True]),
        Record(prompt="p2", completions=["a2"], labels=[False], roles=[""]),
    ]
    out = kto_prepare(recs)
    assert [r.completions[-1] for r in out] == ["a2", "a0", "a1"]
    assert out[1].roles == ["", "", "kl"] and out[1].labels == [False, True, False]
    for r in out:
        r.validate()
    assert kto_prepare(out)[0].completions == out[0].completions  # idempotent
    assert recs[0].completions == ["a0"]  # inputs untouched
    with pytest.raises(ValueError, match="at least two records"):
        kto_prepare(recs[:1])
    with pytest.raises(ValueError, match="role 'kl'"):
        fn("kto")(point_batch([-1.0], [-1.0], [1.0]))


def test_kto_raises_expected_true_reward_on_tabular_world():
    """One prompt, 4 completions; data = samples of π_ref labelled desirable iff r > 0 (exact expectation)."""
    r = np.array([1.0, 0.5, -0.5, -1.0])
    ref = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    labels = (r > 0).astype(float)
    logits = torch.tensor(ref.copy(), requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    start = float(np.exp(ref) @ r)
    for _ in range(150):
        logp = torch.log_softmax(logits, 0)
        # The mismatched completion of each row is the next completion: same set, other pairing.
        kl = logp.detach().roll(1)
        batch = point_batch(
            np.zeros(4),
            ref,
            labels,
            aux={"kl": (kl.numpy()[:, None], np.roll(ref, 1)[:, None], np.ones((4, 1)))},
        )
        batch.items = batch.items.with_(logps=logp)
        loss = (fn("kto")(batch, beta=1.0)[0] * torch.tensor(np.exp(ref))).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = float(torch.softmax(logits, 0).detach().numpy() @ r)
    assert end > start + 0.5


# -------------------------------------------------------------------------------- APO-zero unpaired, BCO
def test_apo_zero_unpaired_values_and_pair_sum():
    logps, ref, beta = np.array([-1.0, -3.0]), np.array([-2.0, -2.5]), 0.4
    loss = loss_of(fn("apo_zero_unpaired")(point_batch(logps, ref, [1.0, 0.0]), beta=beta)).detach().numpy()
    rho = logps - ref
    np.testing.assert_allclose(loss, [1 - sig(beta * rho[0]), sig(beta * rho[1])])
    # TRL's paired apo_zero: (1 - σ(βρ_w)) + σ(βρ_l)
    assert loss.sum() == pytest.approx((1 - sig(beta * rho[0])) + sig(beta * rho[1]))
    init = loss_of(fn("apo_zero_unpaired")(point_batch([-1.0, -2.0], [-1.0, -2.0], [1.0, 0.0])))
    np.testing.assert_allclose(init.detach().numpy(), [0.5, 0.5])


def bco_train(batch, state, **params):
    """One training call of BCO on ``batch`` as a whole step: δ folded from the batch, then the loss."""
    spec = get("bco")
    full = spec.check_params(params)
    spec.step_statistics.fold(state, spec.step_statistics.gather(batch, full), full)
    return spec.fn(batch, state=state, **spec.loss_kwargs(full))


def test_bco_running_delta_udm_and_shift():
    beta, state = 0.5, {}
    b1 = point_batch([-1.0, -2.0], [-2.0, -1.0], [1.0, 0.0])
    l1 = loss_of(bco_train(b1, state, beta=beta)).detach().numpy()
    r1 = beta * np.array([1.0, -1.0])
    d1 = r1.mean()
    np.testing.assert_allclose(l1, [softplus(-(r1[0] - d1)), softplus(r1[1] - d1)])
    b2 = point_batch([0.0, -1.0, -4.0], [-1.0, -1.0, -1.0], [1.0, 0.0, 0.0])
    b2.items.extra["prob_desirable"] = torch.tensor([0.5, 0.95, 0.2], dtype=torch.float64)
    l2 = loss_of(bco_train(b2, state, beta=beta)).detach().numpy()
    r2 = beta * np.array([1.0, 0.0, -3.0])
    d2 = np.concatenate([r1, r2]).mean()  # running mean over all 5 rewards
    w = np.clip(np.array([0.5, 0.95, 0.2]) / (1 - np.array([0.5, 0.95, 0.2]) + 1e-8), 0.5, 10.0)
    np.testing.assert_allclose(
        l2, [softplus(-(r2[0] - d2)), w[1] * softplus(r2[1] - d2), w[2] * softplus(r2[2] - d2)]
    )
    assert state["delta"] == pytest.approx(d2)
    init = loss_of(bco_train(point_batch([-1.0, -1.0], [-1.0, -1.0], [1.0, 0.0]), {}))
    np.testing.assert_allclose(init.detach().numpy(), [math.log(2)] * 2)
    shifted = loss_of(bco_train(point_batch([2.0, 1.0], [-2.0, -1.0], [1.0, 0.0]), {}, beta=beta))
    base = loss_of(bco_train(point_batch([-1.0, -2.0], [-2.0, -1.0], [1.0, 0.0]), {}, beta=beta))
    np.testing.assert_allclose(shifted.detach().numpy(), base.detach().numpy())  # all ρ + 3: δ moves too


# ------------------------------------------------------------------------------------------------ D2O
def test_d2o_value_grad_and_k1_equals_dpo():
    logps, ref, beta, alpha = np.array([-2.0, -1.0]), np.array([-1.5, -1.5]), 0.3, 0.2
    s_logps, s_ref, s_mask = (
        np.array([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]]),
        np.array([[-1.2, -1.0, 0.0], [-1.0, 0.0, 0.0]]),
        np.array([[1, 1, 0], [1, 0, 0]]),
    )
    batch = point_batch(logps, ref, [0.0, 0.0], aux={"sample": (s_logps, s_ref, s_mask)})
    loss = loss_of(fn("d2o")(batch, beta=beta, alpha=alpha))

    def np_d2o(x):
        means = np.array([np.mean((s_logps - s_ref)[i][s_mask[i] > 0]) for i in range(2)])
        return softplus(-(beta * means - alpha * (x - ref)))

    np.testing.assert_allclose(loss.detach().numpy(), np_d2o(logps))
    loss.sum().backward()
    np.testing.assert_allclose(
        batch.items.logps.grad.numpy(), numeric_grad(lambda x: np_d2o(x).sum(), logps), atol=1e-7
    )
    one = point_batch(logps, ref, [0.0, 0.0], aux={"sample": (s_logps[:, :1], s_ref[:, :1], np.ones((2, 1)))})
    np.testing.assert_allclose(
        loss_of(fn("d2o")(one, beta=beta, alpha=beta)).detach().numpy(),
        np_dpo(s_logps[:, 0], logps, s_ref[:, 0], ref, beta),
    )


# -------------------------------------------------------------------------------- unlikelihood, SAFE-ALIGN
def test_unlikelihood_value_gradient_equals_p_and_clamp():
    logits = torch.tensor([[0.3, -1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    logp = torch.log_softmax(logits, -1)[:, 2:3]  # one bad token: vocabulary item 2
    batch = point_batch([0.0], None, [0.0], grad=False)
    batch.items = batch.items.with_(token_logps=logp, token_mask=torch.ones(1, 1, dtype=torch.bool))
    loss = fn("unlikelihood")(batch, alpha=1.0)
    p = np.exp(logits.detach().numpy()[0]) / np.exp(logits.detach().numpy()[0]).sum()
    assert loss.item() == pytest.approx(-np.log(1 - p[2]))
    loss.sum().backward()
    assert logits.grad[0, 2].item() == pytest.approx(p[2])  # d[-log(1-p)]/dz = p
    half = point_batch([0.0], None, [0.0], grad=False)
    half.items = half.items.with_(
        token_logps=torch.tensor([[math.log(0.5)]]), token_mask=torch.ones(1, 1, dtype=torch.bool)
    )
    assert fn("unlikelihood")(half).item() == pytest.approx(math.log(2))
    sure = point_batch([0.0], None, [0.0], grad=False)
    sure.items = sure.items.with_(
        token_logps=torch.tensor([[-1e-12]]), token_mask=torch.ones(1, 1, dtype=torch.bool)
    )
    assert math.isfinite(fn("unlikelihood")(sure).item())


def test_safe_align_ga_values_and_stops_ascent():
    batch = point_batch([-4.0, -6.0, -30.0], None, [1.0, 0.0, 0.0], lengths=[2.0, 3.0, 3.0])
    loss = fn("safe_align_ga")(batch, harm_weight=0.5, max_harmful_nll=5.0)
    np.testing.assert_allclose(loss.detach().numpy(), [2.0, -0.5 * 2.0, -0.5 * 5.0])
    loss.sum().backward()
    np.testing.assert_allclose(batch.items.logps.grad.numpy(), [-0.5, 0.5 / 3, 0.0])  # past τ: no gradient


# ------------------------------------------------------------------------------------ A-LoL and PHF
def test_a_lol_variants():
    logps, ref = np.array([[-2.0, -3.0, -1.0]]), np.array([[-2.5, -2.0, -1.0]])
    ratings = np.array([[[1.0, 0.2], [0.5, 0.2], [-1.0, 0.2]]])  # reward, value
    batch = list_batch(logps, ref, [[0.0, 1.0, 2.0]], ratings=ratings, rating_names=("reward", "value"))
    loss, _ = fn("a_lol")(batch, clip=0.2)
    adv = np.maximum(ratings[0, :, 0] - 0.2, 0)
    ratio = np.clip(np.exp(logps[0] - ref[0]), 0.8, 1.2)
    assert loss.item() == pytest.approx(np.mean(-adv * ratio * logps[0]))
    loss.backward()
    np.testing.assert_allclose(batch.items.logps.grad.numpy()[0], -adv * ratio / 3)  # ratio is detached
    rf = loss_of(
        fn("a_lol")(
            list_batch(logps, ref, [[0.0, 1.0, 2.0]], ratings=ratings, rating_names=("reward", "value")),
            variant="a_lol_ref_free",
        )
    )
    assert rf.item() == pytest.approx(np.mean(-adv * logps[0]))
    neg = np.array([[[-1.0, 0.2], [-2.0, 0.2], [0.0, 0.2]]])
    assert (
        loss_of(
            fn("a_lol")(
                list_batch(logps, ref, [[0.0, 1.0, 2.0]], ratings=neg, rating_names=("reward", "value"))
            )
        ).item()
        == 0.0
    )


def test_phf_limits_and_values():
    logps, lengths = np.array([[-4.0, -9.0, -2.0]]), np.array([[2.0, 3.0, 1.0]])
    ratings = np.array([[[0.3], [-0.4], [1.0]]])
    mean_nll = -(logps / lengths)[0]

    def b():
        return list_batch(
            logps, None, [[1.0, 2.0, 0.0]], lengths=lengths, ratings=ratings, rating_names=("score",)
        )

    assert fn("phf_filtering")(b(), threshold=-math.inf).item() == pytest.approx(mean_nll.mean())  # = SFT
    assert fn("phf_filtering")(b(), threshold=0.0).item() == pytest.approx(mean_nll[[0, 2]].mean())
    assert fn("phf_rwr")(b(), beta=1e9).item() == pytest.approx(mean_nll.mean())  # β → ∞ = SFT
    w = np.minimum(np.exp(ratings[0, :, 0] / 0.5), 1000.0)
    assert fn("phf_rwr")(b(), beta=0.5).item() == pytest.approx(np.mean(w * mean_nll))
    adv = ratings[0, :, 0] - ratings[0, :, 0].mean()  # no value rating: the prompt's mean reward
    assert fn("phf_awr")(b(), beta=0.5).item() == pytest.approx(np.mean(np.exp(adv / 0.5) * mean_nll))
