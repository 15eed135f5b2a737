"""Advantage estimators against hand values (shared/METHODS.md section H) and an independent numpy
transcription of verl's GAE loop (verl/trainer/ppo/core_algos.py ``compute_gae_advantage_return``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs, place_at_last_token
from alignlab.objectives.loss_aggregation import AGGREGATIONS
from alignlab.objectives.registry import ObjectiveError


def adv(name: str, rewards, mask=None, values=None, baseline=None, **params) -> torch.Tensor:
    as_t = lambda x: None if x is None else torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    inputs = AdvantageInputs(as_t(rewards), as_t(mask), as_t(values), as_t(baseline))
    return ADVANTAGES(name, inputs, **params).advantages


def test_rloo_hand_values_and_zero_sum():
    # METHODS rloo: rewards [1,0,0,1] -> baselines [1/3,2/3,2/3,1/3] -> A = [2/3,-2/3,-2/3,2/3]
    a = adv("rloo", [[1.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(a.numpy(), [[2 / 3, -2 / 3, -2 / 3, 2 / 3]], atol=1e-12)
    r = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = adv("rloo", r)
    np.testing.assert_allclose(a.sum(1).numpy(), 0.0, atol=1e-12)
    loo = np.array([[r[g, i] - (r[g].sum() - r[g, i]) / 5 for i in range(6)] for g in range(5)])
    np.testing.assert_allclose(a.numpy(), loo, atol=1e-12)


def test_rloo_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 completions"):
        adv("rloo", [[1.0], [0.0]])


def test_grpo_hand_values():
    # METHODS grpo: [1,0,0,1] -> mean 0.5, sample std sqrt(1/3) -> ±0.866 (TRL's eps 1e-4 in the denominator)
    a = adv("grpo", [[1.0, 0.0, 0.0, 1.0]])
    expected = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    np.testing.assert_allclose(a.numpy(), [[expected, -expected, -expected, expected]], atol=1e-12)
    assert abs(expected - 0.866) < 1e-3
    assert torch.all(adv("grpo", [[0.3, 0.3, 0.3]]) == 0)  # equal rewards: no signal
    assert torch.all(adv("grpo", [[0.7]]) == 0)  # K = 1: TRL's zero advantage


def test_grpo_scales():
    r = np.array([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]])
    centred = r - r.mean(1, keepdims=True)
    batch_std = r.std(ddof=1)
    np.testing.assert_allclose(
        adv("grpo", r, scale="batch", epsilon=0.0).numpy(), centred / batch_std, atol=1e-12
    )
    np.testing.assert_allclose(adv("grpo", r, scale="none").numpy(), centred, atol=1e-12)
    np.testing.assert_allclose(adv("dr_grpo", r).numpy(), centred, atol=1e-12)
    group_std = r.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(adv("grpo", r, epsilon=1e-6).numpy(), centred / (group_std + 1e-6), atol=1e-12)
    with pytest.raises(ValueError, match="scale must be"):
        adv("grpo", r, scale="global")


def test_outcome_estimators_broadcast_over_tokens_and_sum_token_rewards():
    mask = np.array([[[1, 1, 0], [1, 1, 1]]], dtype=float)
    a = adv("grpo", [[1.0, 0.0]], mask=mask)
    per = 0.5 / (math.sqrt(0.5) + 1e-4)
    np.testing.assert_allclose(a.numpy(), [[[per, per, 0], [-per, -per, -per]]], atol=1e-12)
    # token rewards sum to the completion's reward (verl: token_level_rewards.sum(-1))
    token_rewards = np.array([[[0.25, 0.75, 9.0], [0.0, 0.0, 0.0]]])  # the 9 sits on padding: ignored
    np.testing.assert_allclose(
        adv("rloo", token_rewards, mask=mask).numpy(), adv("rloo", [[1.0, 0.0]], mask=mask)
    )


def test_dr_grpo_length_weights():
    # METHODS dr_grpo: equal positive advantages, lengths 2 and 8. Per-token gradient weight of log π:
    # GRPO aggregation (seq_mean_token_mean) 1/(G·2) vs 1/(G·8); Dr. GRPO (token sum / (G·L_max)) equal.
    mask = torch.zeros(2, 8, dtype=torch.float64)
    mask[0, :2] = 1
    mask[1, :] = 1
    advantages = torch.ones(2, dtype=torch.float64)
    ratios = {}
    for name, params, w_short, w_long in [
        ("seq_mean_token_mean", {}, 1 / (2 * 2), 1 / (2 * 8)),
        ("seq_mean_token_sum_norm", {"length_norm": 16}, 1 / (2 * 16), 1 / (2 * 16)),
    ]:
        logps = torch.zeros(2, 8, dtype=torch.float64, requires_grad=True)
        per_token = -advantages[:, None] * logps * mask
        AGGREGATIONS(name, per_token, mask, None, **params).backward()
        grad = -logps.grad
        assert grad[0, 0].item() == pytest.approx(w_short) and grad[1, 0].item() == pytest.approx(w_long)
        ratios[name] = (grad[0, 0] / grad[1, 0]).item()
    assert ratios == pytest.approx({"seq_mean_token_mean": 4.0, "seq_mean_token_sum_norm": 1.0})


def test_reinforce_pp_whitening_either_variance():
    # METHODS reinforce_pp: two 3-token responses, terminal rewards 1 and 0, β = 0, γ = 1:
    # returns [[1,1,1],[0,0,0]] -> ±1 (population variance) or ±sqrt(5/6) (Bessel, N = 6 tokens)
    mask = np.ones((1, 2, 3))
    token_rewards = np.array([[[0, 0, 1.0], [0, 0, 0]]])
    inputs = AdvantageInputs(torch.tensor(token_rewards), torch.tensor(mask))
    out = ADVANTAGES("reinforce_pp", inputs, std="population")
    np.testing.assert_allclose(out.returns.numpy(), [[[1, 1, 1], [0, 0, 0]]])
    np.testing.assert_allclose(out.advantages.numpy(), [[[1, 1, 1], [-1, -1, -1]]], atol=1e-7)
    a = adv("reinforce_pp", token_rewards, mask=mask, std="unbiased")
    s = math.sqrt(5 / 6)
    np.testing.assert_allclose(a.numpy(), [[[s, s, s], [-s, -s, -s]]], atol=1e-7)
    assert abs(float(a.sum())) < 1e-12
    # outcome rewards with a mask are placed on the last real token: the same result
    np.testing.assert_allclose(
        adv("reinforce_pp", [[1.0, 0.0]], mask=mask, std="unbiased").numpy(), a.numpy()
    )


def test_reinforce_pp_discount_and_padding():
    mask = np.array([[[1, 1, 1, 0]]], dtype=float)
    r = np.array([[[0.5, 0.0, 2.0, 7.0]]])  # 7 on padding must not leak into the return
    inputs = AdvantageInputs(torch.tensor(r), torch.tensor(mask))
    returns = ADVANTAGES("reinforce_pp", inputs, gamma=0.5, std="none").returns
    np.testing.assert_allclose(returns.numpy(), [[[0.5 + 0.25 * 2.0, 0.5 * 2.0, 2.0, 0.0]]])


def test_reinforce_pp_baseline_hand_values():
    # group [1, 0] and [3, 3]: centred [0.5, -0.5], [0, 0]; one token each -> whiten over 4 values
    a = adv("reinforce_pp_baseline", [[1.0, 0.0], [3.0, 3.0]], std="population")
    centred = np.array([[0.5, -0.5], [0.0, 0.0]])
    np.testing.assert_allclose(a.numpy(), centred / centred.std(), atol=1e-6)
    mask = np.array([[[1, 1], [1, 0]]], dtype=float)  # lengths 2 and 1: the long one weighs twice
    a = adv("reinforce_pp_baseline", [[1.0, 0.0]], mask=mask, std="population")
    tokens = np.array([0.5, 0.5, -0.5])
    z = (tokens - tokens.mean()) / tokens.std()
    np.testing.assert_allclose(a.numpy(), [[[z[0], z[1]], [z[2], 0]]], atol=1e-6)


def test_remax_greedy_baseline():
    a = adv("remax", [[0.4, 1.0, 0.4]], baseline=[0.4])
    np.testing.assert_allclose(a.numpy(), [[0.0, 0.6, 0.0]], atol=1e-12)  # sample == greedy answer: 0
    mask = np.array([[[1, 1, 0]]], dtype=float)
    token_rewards = np.array([[[-0.1, 1.0, 0.0]]])
    a = adv("remax", token_rewards, mask=mask, baseline=[0.5])
    np.testing.assert_allclose(a.numpy(), [[[0.9 - 0.5, 1.0 - 0.5, 0.0]]], atol=1e-12)
    with pytest.raises(ValueError, match="greedy"):
        adv("remax", [[0.4, 1.0]])


def test_gae_closed_forms():
    g = torch.Generator().manual_seed(1)
    r = torch.randn(2, 3, 5, dtype=torch.float64, generator=g)
    mask = torch.ones(2, 3, 5, dtype=torch.float64)
    mask[0, 1, 3:] = 0
    zeros = torch.zeros_like(r)
    # γ = λ = 1, V ≡ 0: reward-to-go
    a = ADVANTAGES("gae", AdvantageInputs(r, mask, zeros), gamma=1.0, lam=1.0, whiten=False).advantages
    to_go = torch.flip(torch.cumsum(torch.flip(r * mask, [-1]), -1), [-1]) * mask
    np.testing.assert_allclose(a.numpy(), to_go.numpy(), atol=1e-12)
    # λ = 0: the one-step TD error δ_t = r_t + γ V_{t+1} − V_t (V after the last real token = 0)
    v = torch.randn(2, 3, 5, dtype=torch.float64, generator=g)
    a = ADVANTAGES("gae", AdvantageInputs(r, mask, v), gamma=0.9, lam=0.0, whiten=False).advantages
    next_v = torch.cat([v[..., 1:], torch.zeros_like(v[..., :1])], -1) * torch.cat(
        [mask[..., 1:], torch.zeros_like(mask[..., :1])], -1
    )
    np.testing.assert_allclose(a.numpy(), ((r + 0.9 * next_v - v) * mask).numpy(), atol=1e-12)


def verl_gae_numpy(rewards, values, mask, gamma, lam):
    """verl's compute_gae_advantage_return loop (read in volcengine/verl core_algos.py), in numpy:
    skips values and TD errors on masked positions, then masked_whiten with the Bessel-corrected variance."""
    bs, n = rewards.shape
    nextvalues = np.zeros(bs)
    lastgaelam = np.zeros(bs)
    out = []
    for t in reversed(range(n)):
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        current = delta + gamma * lam * lastgaelam
        nextvalues = values[:, t] * mask[:, t] + (1 - mask[:, t]) * nextvalues
        lastgaelam = current * mask[:, t] + (1 - mask[:, t]) * lastgaelam
        out.append(lastgaelam)
    adv = np.stack(out[::-1], 1)
    returns = adv + values
    mean = (adv * mask).sum() / (mask.sum() + 1e-8)
    var = ((adv - mean) ** 2 * mask).sum() / (mask.sum() + 1e-8) * mask.sum() / (mask.sum() - 1)
    return (adv - mean) / np.sqrt(var + 1e-8), returns


@pytest.mark.parametrize("holes", [False, True])
def test_gae_equals_verl_loop_on_random_inputs(holes):
    rng = np.random.default_rng(3)
    groups, k, t = 3, 4, 7
    rewards = rng.normal(size=(groups * k, t))
    values = rng.normal(size=(groups * k, t))
    lengths = rng.integers(1, t + 1, size=groups * k)
    mask = (np.arange(t)[None] < lengths[:, None]).astype(float)
    if holes:  # multi-turn masks with observation tokens inside the response
        mask[:, 1] = 0
        mask[:, 0] = 1
    want_adv, want_ret = verl_gae_numpy(rewards, values, mask, 0.97, 0.9)
    out = ADVANTAGES(
        "gae",
        AdvantageInputs(
            torch.tensor(rewards).view(groups, k, t),
            torch.tensor(mask).view(groups, k, t),
            torch.tensor(values).view(groups, k, t),
        ),
        gamma=0.97,
        lam=0.9,
    )
    m = mask.reshape(groups, k, t)
    np.testing.assert_allclose(out.advantages.numpy(), (want_adv * mask).reshape(groups, k, t), atol=1e-9)
    np.testing.assert_allclose(out.returns.numpy(), (want_ret * mask).reshape(groups, k, t) * m, atol=1e-12)


def test_place_at_last_token():
    mask = torch.tensor([[[1.0, 1, 0], [0, 0, 0], [1, 1, 1]]])
    out = place_at_last_token(torch.tensor([[2.0, 5.0, 3.0]]), mask)
    np.testing.assert_allclose(out.numpy(), [[[0, 2, 0], [0, 0, 0], [0, 0, 3]]])


def test_input_validation_messages():
    with pytest.raises(ValueError, match="need a mask"):
        AdvantageInputs(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="mask must be"):
        AdvantageInputs(torch.zeros(2, 3), torch.zeros(3, 3, 4))
    with pytest.raises(ValueError, match="values must have shape"):
        AdvantageInputs(torch.zeros(2, 3), values=torch.zeros(2))
    with pytest.raises(ValueError, match="the critic's values"):
        adv("gae", [[1.0, 2.0]])
    with pytest.raises(ObjectiveError, match="Did you mean: grpo"):
        ADVANTAGES.get("gpro")
    with pytest.raises(ObjectiveError, match="no setting 'scal'"):
        ADVANTAGES.check_params("grpo", {"scal": "batch"})


def test_every_registry_shares_one_signature():
    from alignlab.objectives.rl_registry import Registry

    reg = Registry("thing", signature=("inputs",))
    with pytest.raises(ValueError, match="every thing takes"):

        @reg.register("odd", paper="-")
        def odd(inputs, extra):  # noqa: ARG001
            """doc"""
