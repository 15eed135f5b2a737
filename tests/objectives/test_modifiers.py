"""Modifiers through Objective.from_config against numpy, plus the loop modifiers' pure updates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.feedback import Feedback
from alignlab.objectives import Objective, get
from alignlab.objectives import loop_modifiers as lm
from alignlab.objectives import modifier_catalog as mc
from alignlab.objectives.modifiers import callbacks, check, needs
from alignlab.scoring.scores import Scores
from tests.objectives._refs_listpoint import list_batch, np_dpo, softplus

CW, CL = np.array([-6.0, -3.0]), np.array([-4.0, -9.0])
RW, RL = np.array([-5.0, -4.0]), np.array([-4.5, -7.0])
LW, LL = np.array([3.0, 2.0]), np.array([2.0, 4.0])


def pairs(cw=CW, cl=CL, rw=RW, rl=RL, lw=LW, ll=LL, **extra):
    """Flat Scores laid out chosen, rejected, chosen, rejected, ... with Feedback.for_pairs."""

    def inter(a, b):
        return torch.tensor(np.stack([a, b], 1).reshape(-1), dtype=torch.float64)

    scores = Scores(logps=inter(cw, cl), lengths=inter(lw, ll), ref_logps=inter(rw, rl), **extra)
    return scores, Feedback.for_pairs(len(cw), weight=torch.ones(len(cw), dtype=torch.float64))


def run(mods, beta=0.5, scores=None):
    obj = Objective.from_config({"name": "dpo", "beta": beta, "modifiers": mods})
    s, f = scores or pairs()
    return obj(s, f)[0].item()


def test_check_validates_and_normalises():
    assert check({"sft_aux": 0.3, "length_norm": True, "reference_free": False}) == {
        "sft_aux": {"alpha": 0.3},
        "length_norm": {"enabled": True},
    }
    with pytest.raises(ValueError, match="unknown modifier"):
        check({"lenght_norm": True})
    with pytest.raises(ValueError, match="epsilon must be in"):
        check({"label_smoothing": 0.7})
    with pytest.raises(ValueError, match="no parameter"):
        check({"tr_dpo": {"alpha": 0.5, "steps": 3}})
    assert needs(check({"ld_alpha": 0.5})) == {"token_logps", "reference"}
    assert [c.name for c in callbacks(check({"tr_dpo": True, "sft_aux": 1.0}))] == ["tr_dpo"]


def test_length_norm_is_dpo_on_mean_log_ratios_and_ignores_repetition():
    expected = np_dpo(CW / LW, CL / LL, RW / LW, RL / LL, 0.5).mean()
    assert run({"length_norm": True}) == pytest.approx(expected)
    doubled = pairs(2 * CW, 2 * CL, 2 * RW, 2 * RL, 2 * LW, 2 * LL)
    assert run({"length_norm": True}, scores=doubled) == pytest.approx(expected)


def test_sft_aux_label_smoothing_reference_free():
    base = np_dpo(CW, CL, RW, RL, 0.5)
    assert run({"sft_aux": 0.0}) == pytest.approx(base.mean())
    assert run({"sft_aux": 0.7}) == pytest.approx((base + 0.7 * (-CW / LW)).mean())
    h = (CW - RW) - (CL - RL)
    eps = 0.1
    assert run({"label_smoothing": eps}) == pytest.approx(
        ((1 - eps) * softplus(-0.5 * h) + eps * softplus(0.5 * h)).mean()
    )
    # sft_aux with smoothing still imitates the original chosen answer
    smoothed = (1 - eps) * softplus(-0.5 * h) + eps * softplus(0.5 * h)
    assert run({"label_smoothing": eps, "sft_aux": 1.0}) == pytest.approx((smoothed + (-CW / LW)).mean())
    assert run({"reference_free": True}) == pytest.approx(softplus(-0.5 * (CW - CL)).mean())


def test_label_smoothing_optimum():
    """The smoothed sigmoid loss is minimised at βh* = log((1-ε)/ε)."""
    eps, beta = 0.2, 1.0
    h = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [h], max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )
    zero = np.zeros(1)

    def closure():
        opt.zero_grad()
        s, f = pairs(zero, zero, zero, zero, np.ones(1), np.ones(1))
        logps = torch.stack([h[0], torch.zeros((), dtype=torch.float64)])
        loss = Objective.from_config({"name": "dpo", "beta": beta, "modifiers": {"label_smoothing": eps}})(
            s.with_(logps=logps), f
        )[0]
        loss.backward()
        return loss

    opt.step(closure)
    assert h.item() == pytest.approx(math.log((1 - eps) / eps), abs=1e-5)


def test_ld_alpha_value_and_alpha_one_is_dpo():
    tok_c = np.array([[-1.0, -2.0, -0.5, 0.0], [-0.2, -0.3, 0.0, 0.0]])
    tok_r = np.array([[-0.7, -0.1, 0.0, 0.0], [-1.0, -1.0, -0.5, -2.0]])
    mask_c, mask_r = np.array([[1, 1, 1, 0], [1, 1, 0, 0]]), np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    ref_c, ref_r = tok_c * 0.5, tok_r * 1.5
    flat = np.stack([tok_c, tok_r], 1).reshape(4, 4)
    flat_ref = np.stack([ref_c, ref_r], 1).reshape(4, 4)
    flat_mask = np.stack([mask_c, mask_r], 1).reshape(4, 4)
    lens_c, lens_r = mask_c.sum(1), mask_r.sum(1)
    s, f = pairs(
        (tok_c * mask_c).sum(1),
        (tok_r * mask_r).sum(1),
        (ref_c * mask_c).sum(1),
        (ref_r * mask_r).sum(1),
        lens_c,
        lens_r,
    )
    s = s.with_(
        token_logps=torch.tensor(flat),
        ref_token_logps=torch.tensor(flat_ref),
        token_mask=torch.tensor(flat_mask, dtype=torch.bool),
    )
    alpha, shared = 0.3, np.minimum(lens_c, lens_r)

    def ld(tok, mask):
        return np.array(
            [tok[i, : shared[i]].sum() + alpha * (tok[i] * mask[i])[shared[i] :].sum() for i in range(2)]
        )

    expected = np_dpo(ld(tok_c, mask_c), ld(tok_r, mask_r), ld(ref_c, mask_c), ld(ref_r, mask_r), 0.5).mean()
    assert run({"ld_alpha": alpha}, scores=(s, f)) == pytest.approx(expected)
    plain = np_dpo(
        (tok_c * mask_c).sum(1),
        (tok_r * mask_r).sum(1),
        (ref_c * mask_c).sum(1),
        (ref_r * mask_r).sum(1),
        0.5,
    )
    assert run({"ld_alpha": 1.0}, scores=(s, f)) == pytest.approx(plain.mean())


def test_wpo_weight_value_detached_and_deterministic_policy():
    tok = torch.tensor([[-0.5, -1.0], [-0.2, -0.1], [-2.0, -0.3], [-0.4, -0.6]], dtype=torch.float64)
    sq = torch.tensor([[-0.9, -0.8], [-0.5, -0.6], [-1.0, -0.2], [-0.7, -0.9]], dtype=torch.float64)
    s, f = pairs(
        np.array([-1.5, -2.3]), np.array([-0.3, -1.0]), RW, RL, np.array([2.0, 2.0]), np.array([2.0, 2.0])
    )
    logps = s.logps.clone().requires_grad_(True)
    s = s.with_(
        logps=logps,
        token_logps=tok,
        token_mask=torch.ones(4, 2, dtype=torch.bool),
        token_log_sq_mass=sq,
    )
    w = np.exp(((tok - sq).numpy()).mean(1))
    weight = w[0::2] * w[1::2]
    base = np_dpo(np.array([-1.5, -2.3]), np.array([-0.3, -1.0]), RW, RL, 0.5)
    obj = Objective.from_config({"name": "dpo", "beta": 0.5, "modifiers": {"wpo_weight": True}})
    loss = obj(s, f)[0]
    assert loss.item() == pytest.approx((weight * base).mean())
    loss.backward()
    h = 0.5 * ((np.array([-1.5, -2.3]) - RW) - (np.array([-0.3, -1.0]) - RL))
    grad_chosen = -weight * 0.5 * (1 - 1 / (1 + np.exp(-h))) / 2  # no gradient through w
    np.testing.assert_allclose(logps.grad.numpy()[0::2], grad_chosen, rtol=1e-10)
    one_hot = Scores(
        logps=torch.zeros(1),
        lengths=torch.ones(1),
        token_logps=torch.zeros(1, 3),
        token_mask=torch.ones(1, 3),
        token_log_sq_mass=torch.zeros(1, 3),
    )
    assert mc.wpo_sequence_weight(one_hot).item() == 1.0


def test_sft_aux_on_a_list_loss_adds_nll_of_the_best():
    obj = Objective.from_config({"name": "listmle", "beta": 1.0, "modifiers": {"sft_aux": 0.5}})
    batch = list_batch(
        [[-2.0, -1.0, -3.0]], [[0.0, 0.0, 0.0]], [[1.0, 0.0, 2.0]], lengths=[[2.0, 4.0, 1.0]], grad=False
    )
    from alignlab.objectives import modifiers as m

    part = obj.parts[0]
    carry = {}
    b = m.before(batch, part.modifiers, carry)
    loss, _ = m.after(b, get("listmle").fn(b, beta=1.0)[0], part.modifiers, carry)
    s = np.array([-2.0, -1.0, -3.0])
    nll_pl = -(s[1] - np.log(np.exp(s).sum())) - (s[0] - np.log(np.exp(s[[0, 2]]).sum()))
    assert loss.item() == pytest.approx(nll_pl + 0.5 * (1.0 / 4.0))


# ------------------------------------------------------------------------------ loop modifiers
def test_tr_dpo_update_soft_hard_and_alpha_zero():
    ref = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5])}
    pol = {"w": torch.tensor([3.0, -2.0]), "b": torch.tensor([1.5])}
    lm.tr_dpo_update(ref, pol, alpha=0.25)
    np.testing.assert_allclose(ref["w"].numpy(), [0.25 * 3 + 0.75 * 1, 0.25 * -2 + 0.75 * 2])
    before = {k: v.clone() for k, v in ref.items()}
    lm.tr_dpo_update(ref, pol, alpha=0.0)
    assert all(torch.equal(ref[k], before[k]) for k in ref)
    lm.tr_dpo_update(ref, pol, alpha=0.1, mode="hard")
    assert all(torch.equal(ref[k], pol[k]) for k in ref)
    assert [s for s in range(1, 8) if lm.tr_dpo_due(s, 3)] == [3, 6]


def test_tr_dpo_alpha_zero_training_equals_numpy_dpo_and_hard_sync_gives_log2():
    """A log-linear table over 3 completions, one pair (0 ≻ 2); 20 SGD steps with the reference synced
    (α = 0) every step equal 20 steps of numpy DPO gradient descent with a fixed reference."""
    beta, lr = 0.5, 0.5
    ref_logits = np.array([0.2, -0.1, 0.4])
    policy = {"z": torch.tensor(ref_logits.copy(), requires_grad=True)}
    reference = {"z": torch.tensor(ref_logits.copy())}
    z_np = ref_logits.copy()

    def logp(z):
        return z - np.log(np.exp(z).sum())

    for _ in range(20):
        lp = torch.log_softmax(policy["z"], 0)
        lr_ = torch.log_softmax(reference["z"], 0)
        h = (lp[0] - lr_[0]) - (lp[2] - lr_[2])
        loss = torch.nn.functional.softplus(-beta * h)
        loss.backward()
        with torch.no_grad():
            policy["z"] -= lr * policy["z"].grad
            policy["z"].grad = None
        lm.tr_dpo_update(reference, {"z": policy["z"].detach()}, alpha=0.0)
        # numpy DPO: d/dz of softplus(-βh), h = (z0 - z2) - const (the log-normaliser cancels)
        hn = (logp(z_np)[0] - logp(ref_logits)[0]) - (logp(z_np)[2] - logp(ref_logits)[2])
        coeff = -beta / (1 + np.exp(beta * hn))
        z_np = z_np - lr * coeff * np.array([1.0, 0.0, -1.0])
    np.testing.assert_allclose(policy["z"].detach().numpy(), z_np, rtol=1e-10)
    lm.tr_dpo_update(reference, {"z": policy["z"].detach()}, alpha=0.6, mode="hard")
    lp, lr_ = torch.log_softmax(policy["z"], 0), torch.log_softmax(reference["z"], 0)
    h = (lp[0] - lr_[0]) - (lp[2] - lr_[2])
    assert torch.nn.functional.softplus(-beta * h).item() == pytest.approx(math.log(2))


def test_soup_reference_and_hft_freeze():
    a, b = {"w": torch.tensor([1.0, 3.0])}, {"w": torch.tensor([3.0, 5.0])}
    np.testing.assert_allclose(lm.soup_reference([a, b])["w"].numpy(), [2.0, 4.0])
    assert torch.equal(lm.soup_reference([a, a])["w"], a["w"])
    np.testing.assert_allclose(lm.soup_reference([a, b], [0.25, 0.75])["w"].numpy(), [2.5, 4.5])
    model = torch.nn.ModuleDict(
        {
            "embed": torch.nn.Embedding(5, 4),
            "layers": torch.nn.ModuleList(
                [torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)) for _ in range(3)]
            ),
        }
    )
    names = [n for n, _ in model.named_parameters()]
    mask = lm.hft_freeze_mask(names, seed=1)
    assert mask == lm.hft_freeze_mask(names, seed=1)
    for layer in range(3):
        members = [n for n in names if n.startswith(f"layers.{layer}.")]
        assert sum(mask[n] for n in members) == len(members) // 2
    assert mask["embed.weight"] is False
    lm.apply_hft_freeze(model, seed=1)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if mask[n]}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = model["embed"](torch.tensor([1, 2]))
    for layer in model["layers"]:
        x = layer(x)
    x.sum().backward()
    opt.step()
    assert all(torch.equal(dict(model.named_parameters())[n], v) for n, v in frozen.items())


def test_bvpo_mix():
    lt, le = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.0])
    assert torch.equal(lm.bvpo_mix_losses(lt, le, 1.0), lt)
    assert lm.bvpo_mix_losses(lt, le, 0.25).tolist() == [2.5, 0.5]
    assert lm.bvpo_optimal_alpha(var_trace=0.0, var_empty=1.0, bias_sq=0.5) == 1.0
    assert lm.bvpo_optimal_alpha(var_trace=1.0, var_empty=1.0, bias_sq=0.0) == pytest.approx(0.5)
