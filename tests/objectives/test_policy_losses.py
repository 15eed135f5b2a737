"""Policy losses, KL estimators, loss aggregation and KL controllers against independent numpy formulas
(verl's ``compute_policy_loss_vanilla``/``compute_value_loss``/``agg_loss``, TRL 1.16's GRPO and RLOO
loss lines, Ziegler et al.'s controller), and the aggregation's independence from micro-batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.models.value_head import ValueHead
from alignlab.objectives.kl_control import AdaptiveKLController, FixedKLController, kl_controller
from alignlab.objectives.kl_estimators import KL_ESTIMATORS, kl_penalised_rewards
from alignlab.objectives.loss_aggregation import AGGREGATIONS, LossNormalisers
from alignlab.objectives.policy_losses import POLICY_LOSSES, clipped_value_loss


def _inputs(seed=0, shape=(6, 5)):
    rng = np.random.default_rng(seed)
    logps = rng.normal(-1.5, 0.5, size=shape)
    old = logps + rng.normal(0, 0.3, size=shape)  # ratios well outside [0.8, 1.2] on some tokens
    adv = rng.normal(size=shape)
    lengths = rng.integers(1, shape[1] + 1, size=shape[0])
    mask = (np.arange(shape[1])[None] < lengths[:, None]).astype(float)
    return logps, old, adv, mask


def verl_vanilla_numpy(old, logp, adv, mask, low, high, c):
    """verl compute_policy_loss_vanilla (volcengine/verl core_algos.py), per token, before agg_loss."""
    ratio = np.exp(np.clip(logp - old, -20, 20))
    l1 = -adv * ratio
    l2 = -adv * np.clip(ratio, 1 - low, 1 + high)
    clip1 = np.maximum(l1, l2)
    l3 = -adv * c
    clip2 = np.minimum(l3, clip1)
    return np.where(adv < 0, clip2, clip1)


def test_ppo_clip_equals_verl_vanilla_with_dual_clip():
    logps, old, adv, mask = _inputs()
    want = verl_vanilla_numpy(old, logps, adv, mask, 0.2, 0.28, 3.0)
    t = lambda x: torch.tensor(x)  # noqa: E731
    loss, metrics = POLICY_LOSSES(
        "ppo_clip", t(logps), t(old), t(adv), t(mask), epsilon_high=0.28, dual_clip=3.0
    )
    np.testing.assert_allclose(loss.numpy(), want * mask, atol=1e-12)
    token_mean = (want * mask).sum() / mask.sum()  # verl agg_loss("token-mean")
    assert AGGREGATIONS("token_mean", loss, t(mask), None).item() == pytest.approx(token_mean, abs=1e-12)
    clipped = (-adv * np.clip(np.exp(logps - old), 0.8, 1.28)) > (-adv * np.exp(logps - old))
    assert metrics["clip_fraction"].item() == pytest.approx((clipped * mask).sum() / mask.sum())
    ell = logps - old  # k3 of KL(π_old ‖ π) per token: e^ℓ − ℓ − 1 ≥ 0 (Schulman 2020), token mean
    k3 = np.exp(ell) - ell - 1
    assert metrics["approx_kl"].item() == pytest.approx((k3 * mask).sum() / mask.sum()) and k3.min() >= 0


def test_ppo_clip_trl_form_and_gradient():
    # TRL 1.16 _compute_loss: -min(coef_1·A, clamp(coef_1, 1-ε_low, 1+ε_high)·A), A per sequence
    logps, old, _, mask = _inputs(1)
    adv = np.random.default_rng(2).normal(size=logps.shape[0])
    coef = np.exp(logps - old)
    want = -np.minimum(coef * adv[:, None], np.clip(coef, 0.8, 1.2) * adv[:, None]) * mask
    lp = torch.tensor(logps, requires_grad=True)
    loss, _ = POLICY_LOSSES("ppo_clip", lp, torch.tensor(old), torch.tensor(adv), torch.tensor(mask))
    np.testing.assert_allclose(loss.detach().numpy(), want, atol=1e-12)
    loss.sum().backward()
    inside = (coef >= 0.8) & (coef <= 1.2) | (adv[:, None] * (coef - 1) < 0)  # unclipped branch taken
    np.testing.assert_allclose(
        lp.grad.numpy(), np.where(inside, -adv[:, None] * coef, 0.0) * mask, atol=1e-12
    )


def test_dual_clip_must_exceed_one():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        POLICY_LOSSES("ppo_clip", x, x, x, x + 1, dual_clip=0.5)


def test_sequence_clip_is_trl_rloo_and_gspo_is_length_normalised():
    logps, old, _, mask = _inputs(4)
    adv = np.random.default_rng(5).normal(size=logps.shape[0])
    t = lambda x: torch.tensor(x)  # noqa: E731
    # TRL RLOO: log_ratio = Σ_t logp·m − old_logps (summed), loss = mean_i -min(ρA, clip(ρ)A)
    rho = np.exp(((logps - old) * mask).sum(-1))
    trl = (-np.minimum(rho * adv, np.clip(rho, 0.8, 1.2) * adv)).mean()
    per_token, _ = POLICY_LOSSES("sequence_clip", t(logps), t(old), t(adv), t(mask))
    assert AGGREGATIONS("seq_mean_token_mean", per_token, t(mask), None).item() == pytest.approx(
        trl, abs=1e-12
    )
    # GSPO: s_i = exp(mean_t log-ratio)
    s = np.exp(((logps - old) * mask).sum(-1) / mask.sum(-1))
    gspo = (-np.minimum(s * adv, np.clip(s, 1 - 3e-4, 1 + 4e-4) * adv)).mean()
    per_token, _ = POLICY_LOSSES("gspo", t(logps), t(old), t(adv), t(mask))
    assert AGGREGATIONS("seq_mean_token_mean", per_token, t(mask), None).item() == pytest.approx(
        gspo, abs=1e-12
    )
    with pytest.raises(ValueError, match="one advantage per completion"):
        POLICY_LOSSES("gspo", t(logps), t(old), t(logps), t(mask))


def test_reinforce_and_clipped_value_loss():
    logps, old, adv, mask = _inputs(6)
    t = lambda x: torch.tensor(x)  # noqa: E731
    loss, _ = POLICY_LOSSES("reinforce", t(logps), t(old), t(adv), t(mask))
    np.testing.assert_allclose(loss.numpy(), -adv * logps * mask)
    rng = np.random.default_rng(7)
    v, v_old, ret = rng.normal(size=(3, *logps.shape))
    want = 0.5 * np.maximum((v - ret) ** 2, (np.clip(v, v_old - 0.2, v_old + 0.2) - ret) ** 2) * mask  # verl
    got, metrics = clipped_value_loss(t(v), t(v_old), t(ret), t(mask), clip=0.2)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    assert 0 < metrics["value_clip_fraction"] < 1
    np.testing.assert_allclose(
        clipped_value_loss(t(v), t(v_old), t(ret), t(mask), clip=None)[0].numpy(), 0.5 * (v - ret) ** 2 * mask
    )


def test_kl_estimators_formulas_and_expectations():
    logps, old, _, _ = _inputs(8)
    ref = logps + np.random.default_rng(9).normal(0, 0.4, size=logps.shape)
    t = lambda x: torch.tensor(x)  # noqa: E731
    lr = ref - logps
    np.testing.assert_allclose(KL_ESTIMATORS("k1", t(logps), t(ref), None).numpy(), logps - ref)
    np.testing.assert_allclose(KL_ESTIMATORS("k2", t(logps), t(ref), None).numpy(), 0.5 * (logps - ref) ** 2)
    np.testing.assert_allclose(
        KL_ESTIMATORS("k3", t(logps), t(ref), None).numpy(), np.exp(lr) - lr - 1, atol=1e-12
    )
    np.testing.assert_allclose(
        KL_ESTIMATORS("k3_ratio", t(logps), t(ref), t(old)).numpy(),
        (np.exp(lr) - lr - 1) * np.exp(logps - old),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="old_logps"):
        KL_ESTIMATORS("k3_ratio", t(logps), t(ref), None)
    # exact expectations on a categorical: E_π[k1] = E_π[k3] = KL(π‖π_ref)
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.2, 0.2, 0.6])
    kl = (p * np.log(p / q)).sum()
    for name in ("k1", "k3"):
        est = KL_ESTIMATORS(name, t(np.log(p)), t(np.log(q)), None).numpy()
        assert (p * est).sum() == pytest.approx(kl, abs=1e-12)


def test_kl_penalised_rewards():
    mask = torch.tensor([[1.0, 1, 0], [1, 1, 1]])
    kl = torch.tensor([[0.1, 0.2, 9.0], [0.3, 0.0, -0.1]])
    rewards = torch.tensor([1.0, 2.0])
    per_token = kl_penalised_rewards(rewards, kl, mask, beta=0.5)
    np.testing.assert_allclose(per_token.numpy(), [[-0.05, 1 - 0.1, 0], [-0.15, 0, 2 + 0.05]], atol=1e-7)
    per_seq = kl_penalised_rewards(rewards, kl, mask, beta=0.5, per_token=False)
    np.testing.assert_allclose(per_seq.numpy(), [1 - 0.15, 2 - 0.1], atol=1e-7)  # TRL RLOO: R − β Σ_t k1


def agg_numpy(mode, loss, mask, length_norm=None):
    n = mask.sum(-1)
    if mode == "token_mean":
        return (loss * mask).sum() / mask.sum()
    if mode == "seq_mean_token_mean":
        return ((loss * mask).sum(-1) / n).mean()
    if mode == "seq_mean_token_sum":
        return (loss * mask).sum(-1).mean()
    return (loss * mask).sum() / (loss.shape[0] * length_norm)


@pytest.mark.parametrize(
    "mode", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"]
)
def test_aggregation_formulas_and_micro_batch_invariance(mode):
    logps, old, adv, mask = _inputs(10, shape=(8, 6))
    params = {"length_norm": 10} if mode == "seq_mean_token_sum_norm" else {}
    want = agg_numpy(mode, -adv * logps, mask, 10)

    def loss_and_grad(pieces):
        lp = torch.tensor(logps, requires_grad=True)
        m = torch.tensor(mask)
        global_n = sum((LossNormalisers.of(m[p]) for p in pieces), LossNormalisers(0.0, 0.0))
        total = 0.0
        for p in pieces:  # each micro-batch backpropagates its share of the global loss
            per_token, _ = POLICY_LOSSES("reinforce", lp[p], torch.tensor(old)[p], torch.tensor(adv)[p], m[p])
            share = AGGREGATIONS(mode, per_token, m[p], global_n, **params)
            share.backward()
            total += share.item()
        return total, lp.grad.numpy().copy()

    whole, grad_whole = loss_and_grad([slice(0, 8)])
    assert whole == pytest.approx(want, abs=1e-12)
    for size in (1, 2, 3):
        pieces = [slice(i, i + size) for i in range(0, 8, size)]
        cut, grad_cut = loss_and_grad(pieces)
        assert cut == pytest.approx(whole, abs=1e-12)
        np.testing.assert_allclose(grad_cut, grad_whole, atol=1e-12)


def test_normalisers_ignore_empty_sequences():
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert LossNormalisers.of(mask) == LossNormalisers(tokens=2.0, sequences=1.0)


def test_adaptive_kl_controller_hand_values():
    c = AdaptiveKLController(beta=0.1, target=6.0, horizon=10000)
    # KL 12 -> error clipped to 0.2 -> β·(1 + 0.2·256/10000)
    assert c.update(12.0, 256) == pytest.approx(0.1 * (1 + 0.2 * 256 / 10000))
    before = c.value
    assert c.update(5.4, 100) == pytest.approx(before * (1 - 0.1 * 100 / 10000))
    state = c.state_dict()
    d = AdaptiveKLController(beta=1.0, target=6.0, horizon=10000)
    d.load_state_dict(state)
    assert d.value == c.value
    f = FixedKLController(0.05)
    assert f.update(100.0, 10) == 0.05
    assert isinstance(kl_controller(0.05), FixedKLController) and not isinstance(
        kl_controller(0.05), AdaptiveKLController
    )
    with pytest.raises(ValueError, match="target > 0"):
        AdaptiveKLController(0.1, 0.0, 10)


def test_value_head_shapes_and_float32():
    head = ValueHead(16)
    hidden = torch.randn(2, 3, 5, 16, dtype=torch.bfloat16)
    out = head(hidden)
    assert out.shape == (2, 3, 5) and out.dtype == torch.float32
    want = hidden.float() @ head.linear.weight[0].detach() + head.linear.bias.detach()
    torch.testing.assert_close(out.detach(), want)
