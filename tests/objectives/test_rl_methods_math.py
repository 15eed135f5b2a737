"""Phase-1 pieces of the non-core section-H methods, each against an independent value (hand, numpy,
closed form): p3o, quark, nlpo, fine_grained_rlhf, drpo, trpa."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.objectives.drpo import drpo_loss
from alignlab.objectives.fine_grained_rewards import fine_grained_token_rewards, segment_token_rewards
from alignlab.objectives.nlpo_mask import (
    mask_policy_due,
    masked_entropy,
    masked_log_probs,
    masked_token_logps,
    nucleus_action_mask,
)
from alignlab.objectives.p3o import p3o_pair_loss
from alignlab.objectives.quark import QuarkPool, quantile_ids, quark_loss, quark_tokens
from alignlab.objectives.trpa import trpa_loss, trpa_pairs, trust_region_kl

D = torch.float64


# --------------------------------------------------------------------------------------------- P3O
def _p3o_grad(rewards: torch.Tensor, variant: str, old_shift: float = 0.0) -> torch.Tensor:
    logps = torch.tensor([[-1.3, -2.1], [-0.4, -0.9], [-3.0, -1.0]], dtype=D, requires_grad=True)
    old = logps.detach() + old_shift
    p3o_pair_loss(logps, old, rewards, variant=variant).sum().backward()
    return logps.grad.clone()


@pytest.mark.parametrize("variant", ["separate", "joint"])
def test_p3o_invariant_to_prompt_dependent_reward_shift(variant):
    rewards = torch.tensor([[1.0, 0.5], [-0.25, 0.75], [2.0, 2.5]], dtype=D)
    shift = torch.tensor([[3.0], [-7.5], [0.125]], dtype=D)  # c(x), one per prompt
    for old_shift in (0.0, 0.1):  # on-policy and with ratios away from 1
        base = _p3o_grad(rewards, variant, old_shift)
        shifted = _p3o_grad(rewards + shift, variant, old_shift)
        assert torch.equal(base, shifted)  # dyadic shifts: Δ is bit-identical


@pytest.mark.parametrize("variant", ["separate", "joint"])
def test_p3o_on_policy_gradient_is_the_pairwise_policy_gradient(variant):
    rewards = torch.tensor([[1.0, 0.5], [-0.25, 0.75], [2.0, 2.5]], dtype=D)
    grad = _p3o_grad(rewards, variant)
    delta = (rewards[:, 0] - rewards[:, 1]).numpy()
    # ∂L/∂logπ(y1) = −Δ/2, ∂L/∂logπ(y2) = +Δ/2 (hand: the gradient of −½Δ(logπ1 − logπ2))
    np.testing.assert_allclose(grad.numpy(), np.stack([-delta / 2, delta / 2], 1), rtol=0, atol=1e-15)


def test_p3o_clipping_stops_the_gradient_outside_the_trust_region():
    logps = torch.tensor([[0.0, 0.0]], dtype=D, requires_grad=True)
    old = torch.tensor([[-0.5, 0.0]], dtype=D)  # ρ1 = e^0.5 ≈ 1.65 > 1.2
    p3o_pair_loss(logps, old, torch.tensor([[1.0, 0.0]], dtype=D), variant="separate").sum().backward()
    assert logps.grad[0, 0] == 0.0  # Δ > 0 and ρ1 > 1 + ε: clipped
    assert logps.grad[0, 1] == pytest.approx(0.5)  # ρ2 = 1: −½·(−ρ2Δ) → +Δ/2
    logps.grad = None
    p3o_pair_loss(logps, old, torch.tensor([[1.0, 0.0]], dtype=D), variant="joint").sum().backward()
    assert torch.all(logps.grad == 0.0)  # ρ1/ρ2 ≈ 1.65 clipped as a whole


def test_p3o_kl_enters_the_reward_difference():
    logps = torch.zeros(1, 2, dtype=D)
    r = torch.tensor([[1.0, 0.0]], dtype=D)
    kl = torch.tensor([[2.0, 0.5]], dtype=D)
    loss = p3o_pair_loss(logps, logps, r, kl=kl, beta=0.1, variant="joint")
    # Δ = (1 − 0.2) − (0 − 0.05) = 0.85; ρ = 1 → L = −Δ/2
    assert float(loss) == pytest.approx(-0.425, abs=1e-15)


# -------------------------------------------------------------------------------------------- Quark
def test_quark_quantiles_follow_the_official_pool_rule():
    scores = [0.3, 0.9, -1.0, 0.5, 0.9, 0.1, 0.0]
    got = quantile_ids(scores, 3)
    # hand: sorted desc (stable) = idx [1, 4, 3, 0, 5, 6, 2]; 7 // 3 = 2 per quantile, the last 1 joins q2
    expected = [None] * 7
    for rank, i in enumerate([1, 4, 3, 0, 5, 6, 2]):
        expected[i] = min(rank // 2, 2)
    assert got == expected
    assert quark_tokens(3) == ["<|quark_0|>", "<|quark_1|>", "<|quark_2|>"]
    pool = QuarkPool(num_quantiles=2)
    pool.add(["a", "b", "c"], ["x", "y", "z"], [1.0, None, 0.0])
    assert len(pool) == 2 and pool.quantiles() == [0, 1]
    assert QuarkPool.from_state_dict(pool.state_dict()).rewards == pool.rewards


def test_quark_loss_is_the_token_mean_of_nll_plus_kl_minus_entropy():
    rng = np.random.default_rng(0)
    logp, kl, ent = (torch.tensor(rng.normal(size=(2, 4)), dtype=D) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    m = mask.numpy().astype(bool)
    expected = np.mean((-logp.numpy() + 0.05 * kl.numpy() - 0.06 * ent.numpy())[m])
    assert float(quark_loss(logp, kl, ent, mask)) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------- NLPO
def _numpy_nucleus(logits: np.ndarray, top_p: float, min_keep: int) -> np.ndarray:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = np.zeros(len(p), bool)
    mass = 0.0
    for rank, i in enumerate(order):
        if rank < min_keep or mass <= top_p:
            keep[i] = True
        mass += p[i]
    return keep


def test_nlpo_nucleus_mask_matches_a_numpy_reference():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 11)) * 2
    for top_p, min_keep in [(0.5, 1), (0.9, 1), (0.2, 3), (0.999, 1)]:
        got = nucleus_action_mask(torch.tensor(logits), top_p, min_keep).numpy()
        expected = np.stack([_numpy_nucleus(row, top_p, min_keep) for row in logits])
        np.testing.assert_array_equal(got, expected)
    # hand: probs [.5, .3, .15, .05], top_p .6 → mass before = [0, .5, .8, .95] → keep first two
    hand = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=D))
    assert nucleus_action_mask(hand, 0.6).tolist() == [True, True, False, False]
    assert nucleus_action_mask(hand, 0.6, always_keep_ids=[3]).tolist() == [True, True, False, True]


def test_nlpo_with_top_p_one_is_ppo():
    rng = np.random.default_rng(2)
    logits = torch.tensor(rng.normal(size=(3, 5, 9)) * 3)
    actions = torch.tensor(rng.integers(0, 9, size=(3, 5)))
    allowed = nucleus_action_mask(logits, 1.0)
    assert allowed.all()
    assert torch.equal(
        masked_token_logps(logits, actions, allowed),
        logits.log_softmax(-1).gather(-1, actions[..., None])[..., 0],
    )


def test_nlpo_masked_distribution_renormalises_over_the_nucleus():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0], dtype=D)
    allowed = torch.tensor([True, False, True, False])
    logp = masked_log_probs(logits, allowed)
    z = math.exp(2.0) + math.exp(0.0)
    assert float(logp[0]) == pytest.approx(2.0 - math.log(z), abs=1e-14)
    assert float(logp[2]) == pytest.approx(-math.log(z), abs=1e-14)
    assert logp[1] == float("-inf")
    p = np.array([math.exp(2.0), 1.0]) / z
    assert float(masked_entropy(logits, allowed)) == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-14)
    assert [mask_policy_due(i, 20) for i in (1, 19, 20, 40)] == [False, False, True, True]


# -------------------------------------------------------------------------------- fine-grained RLHF
def test_fine_grained_with_one_model_and_one_segment_is_ppos_token_reward():
    rng = np.random.default_rng(3)
    old, ref = torch.tensor(rng.normal(size=(2, 5))), torch.tensor(rng.normal(size=(2, 5)))
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    R = torch.tensor([0.7, -1.2], dtype=D)
    last = torch.tensor([[3], [4]])  # the whole response is one segment ending at its last token
    got = fine_grained_token_rewards(last, R[:, None], [1.0], old, ref, mask, beta=0.1)
    # PPO (METHODS `ppo` step 2): r_t = −β·(log π_old − log π_ref) + 1[t = T]·R, 0 on padding
    expected = -0.1 * (old - ref).numpy()
    expected[0, 3] += 0.7
    expected[1, 4] += -1.2
    expected *= mask.numpy()
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-15)


def test_fine_grained_segments_and_weights_land_on_segment_ends():
    ends = torch.tensor([[1, 4, -1]])  # two segments (tokens 0–1, 2–4), one padded
    values = torch.tensor([[[1.0, -1.0], [0.5, 2.0], [9.0, 9.0]]], dtype=D)
    got = segment_token_rewards(ends, values, [0.3, 0.7], 6)
    assert got.tolist() == [[0.0, pytest.approx(0.3 - 0.7), 0.0, 0.0, pytest.approx(0.15 + 1.4), 0.0]]


# --------------------------------------------------------------------------------------------- DRPO
def _drpo_setup(lengths, correct, seed=0):
    rng = np.random.default_rng(seed)
    T = max(lengths)
    mask = torch.tensor([[1] * n + [0] * (T - n) for n in lengths])
    logps = torch.tensor(rng.normal(-1.0, 0.3, size=(len(lengths), T)), requires_grad=True)
    return logps, mask, torch.tensor(correct, dtype=D)


@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0, 100.0])
def test_drpo_never_pushes_a_correct_rollout_down(lam):
    lengths, correct = [2, 10, 3, 2, 3, 2], [1, 1, 1, 0, 0, 0]  # a long correct rollout (10 tokens)
    logps, mask, corr = _drpo_setup(lengths, correct)
    group = torch.zeros(6, dtype=torch.long)
    loss, _ = drpo_loss(logps, logps.detach(), mask, group, corr, max_length=10, lam=lam)
    loss.backward()
    # ∂L/∂s_i = Σ_t ∂L/∂logp_{i,t} (s_i is the mean of the token log-probs, ∂s_i/∂logp_t = 1/|y_i|)
    grad_s = (logps.grad * mask).sum(-1)
    assert torch.all(grad_s[:3] < 0)  # raising any correct rollout's likelihood lowers the loss

    # contrast: GRPO with a length-penalised reward r = correct − 0.1·|y| gives the long correct one A < 0
    r = np.array(correct, float) - 0.1 * np.array(lengths)
    adv = (r - r.mean()) / r.std(ddof=1)
    assert adv[1] < 0


def test_drpo_gradient_matches_the_closed_form():
    lengths, correct = [2, 6, 5, 3], [1, 1, 0, 0]
    logps, mask, corr = _drpo_setup(lengths, correct, seed=4)
    group = torch.tensor([0, 0, 0, 0])
    tau, lam, L = 10.0, 0.1, 8
    loss, _ = drpo_loss(logps, logps.detach(), mask, group, corr, max_length=L, tau=tau, lam=lam)
    loss.backward()
    n = np.array(lengths, float)
    s = np.array([logps.detach().numpy()[i, : lengths[i]].mean() for i in range(4)])
    w = np.exp((1 - n / L) / lam)
    expected_ds = np.zeros(4)
    expected_ds[:2] = -w[:2] / w[:2].sum()  # one prompt (G = 1)
    e = np.exp(s[2:] / tau)
    expected_ds[2:] = e / e.sum()
    grad = logps.grad.numpy()
    for i in range(4):  # ∂L/∂logp_{i,t} = ∂L/∂s_i / |y_i| on every real token
        np.testing.assert_allclose(grad[i, : lengths[i]], expected_ds[i] / n[i], rtol=1e-10)
        assert np.all(grad[i, lengths[i] :] == 0)
    # value: −(Σ w s / Σ w − τ·log Σ exp(s/τ)) at ratio 1 (the KL penalty is 0)
    value = -(np.sum(w[:2] * s[:2]) / w[:2].sum() - tau * np.log(e.sum()))
    assert float(loss) == pytest.approx(value, rel=1e-12)


def test_drpo_groups_without_both_kinds_add_nothing_but_count():
    logps, mask, corr = _drpo_setup([3, 3, 3, 3], [1, 0, 1, 1])
    group = torch.tensor([0, 0, 1, 1])
    loss2, m = drpo_loss(logps, logps.detach(), mask, group, corr, max_length=3)
    loss1, _ = drpo_loss(logps[:2], logps[:2].detach(), mask[:2], group[:2], corr[:2], max_length=3)
    assert float(loss2) == pytest.approx(float(loss1) / 2, rel=1e-12)
    assert float(m["drpo_valid_groups"]) == 1.0


# --------------------------------------------------------------------------------------------- TRPA
def test_trpa_pairs_connect_only_different_levels():
    levels = torch.tensor([1, 2, 2, 4, 1, 3])
    group = torch.tensor([0, 0, 0, 0, 1, 1])
    win, lose = trpa_pairs(levels, group)
    pairs = set(zip(win.tolist(), lose.tolist()))
    assert pairs == {(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (4, 5)}
    assert all(levels[w] < levels[lo] for w, lo in pairs)


def test_trpa_loss_by_hand():
    mean_logps = torch.tensor([-1.0, -2.0, -1.5], dtype=D)
    ref = torch.tensor([-1.2, -1.8, -1.5], dtype=D)  # log-ratios 0.2, −0.2, 0.0
    levels, group = torch.tensor([1, 2, 3]), torch.zeros(3, dtype=torch.long)
    got = trpa_loss(mean_logps, ref, levels, group, beta=0.1, anisotropy=2.5)

    def sp(z):
        return math.log1p(math.exp(-z))  # −log σ(z)

    expected = (sp(2.5 * 0.1 * 0.4) + sp(2.5 * 0.1 * 0.2) + sp(0.1 * -0.2)) / 3
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # no pair (one level per prompt): mean −log σ(±ℓ)
    solo = trpa_loss(mean_logps, ref, torch.tensor([1, 2, 2]), torch.tensor([0, 1, 1]))
    assert float(solo) == pytest.approx((sp(0.2) + sp(0.2) + sp(0.0)) / 3, rel=1e-12)
    tok, old = torch.tensor([[-1.0, -2.0]], dtype=D), torch.tensor([[-1.5, -2.0]], dtype=D)
    k3 = math.exp(-0.5) + 0.5 - 1
    assert float(trust_region_kl(tok, old, torch.ones(1, 2), coef=1.0)) == pytest.approx(k3 / 2, rel=1e-12)


def test_p3o_separate_clip_is_rloo_k2_with_sequence_clip():
    """P3O-V1 on a pair = the mean over the pair of TRL-RLOO's sequence-clip loss with K = 2 leave-one-out
    advantages (A_1 = R_1 − R_2 = Δ, A_2 = −Δ): the same loss and gradients, ratios away from 1."""
    from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs
    from alignlab.objectives.policy_losses import POLICY_LOSSES

    rng = np.random.default_rng(5)
    tokens = torch.tensor(rng.normal(-1.0, 0.2, size=(3, 2, 4)), requires_grad=True)  # [pairs, 2, T]
    old = tokens.detach() + torch.tensor(rng.normal(0, 0.15, size=(3, 2, 4)))
    mask = torch.ones(3, 2, 4)
    rewards = torch.tensor(rng.normal(size=(3, 2)))
    p3o = p3o_pair_loss(tokens.sum(-1), old.sum(-1), rewards, clip=0.2, variant="separate").sum()
    (g_p3o,) = torch.autograd.grad(p3o, tokens)
    adv = ADVANTAGES("rloo", AdvantageInputs(rewards)).advantages
    np.testing.assert_allclose(
        adv.numpy(), torch.stack([rewards[:, 0] - rewards[:, 1]] * 2, 1).numpy() * [1, -1]
    )
    per_token, metrics = POLICY_LOSSES("sequence_clip", tokens, old, adv, mask, epsilon=0.2)
    assert 0 < float(metrics["clip_fraction"]) < 1  # both branches of the clip are exercised
    rloo = (
        (per_token.sum(-1) / 4).mean(-1).sum()
    )  # seq mean over the pair (the loss sits on each of 4 tokens)
    (g_rloo,) = torch.autograd.grad(rloo, tokens)
    assert float(p3o) == pytest.approx(float(rloo), rel=1e-12)
    np.testing.assert_allclose(g_p3o.numpy(), g_rloo.numpy(), rtol=1e-12, atol=1e-15)


def test_quark_best_quantile_token_gives_higher_reward_on_a_bandit():
    """METHODS `quark` test on a tabular bandit: one pool of π_ref samples, quantiles by reward, the Quark
    loss minimised over a policy table conditioned on the quantile token; sampling with the best token
    then has a higher expected reward than with the worst, and than π_ref."""
    gen = torch.Generator().manual_seed(0)
    num_y, k, n = 6, 3, 600
    ref_logp = torch.log_softmax(torch.randn(num_y, generator=gen, dtype=D), -1)
    reward = torch.randn(num_y, generator=gen, dtype=D)
    samples = torch.multinomial(ref_logp.exp(), n, replacement=True, generator=gen)
    pool = QuarkPool(num_quantiles=k)
    pool.add(["x"] * n, [str(int(s)) for s in samples], reward[samples].tolist())
    quantile = torch.tensor(pool.quantiles())
    logits = ref_logp.repeat(k, 1).clone().requires_grad_(True)  # π(·|x, ⟨r_q⟩), initialised at π_ref
    opt = torch.optim.LBFGS([logits], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(logits, -1)  # [K, Y]
        p = logp.exp()
        kl = (p * (logp - ref_logp)).sum(-1)  # KL(π(·|x,q) ‖ π_ref(·|x)) per quantile
        ent = -(p * logp).sum(-1)
        loss = quark_loss(
            logp[quantile, samples][:, None], kl[quantile][:, None], ent[quantile][:, None], torch.ones(n, 1)
        )
        loss.backward()
        return loss

    opt.step(closure)
    policy = torch.softmax(logits.detach(), -1)
    expected = policy @ reward
    assert expected[0] > expected[-1] + 0.5  # best token ≫ worst token
    assert expected[0] > float(ref_logp.exp() @ reward)
