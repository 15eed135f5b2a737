"""Proof that the RL toolkit implements the papers' objectives: on a one-step bandit with 4 actions and a
softmax policy, EXACT expectations of each method's sampled loss (every sample, or every group of K
samples, enumerated and weighted by its probability under π_old = sg(π)) are followed by gradient descent
until the policy stops moving, and the limit is compared with its closed form.

- KL in the reward (k1): ppo (GAE, PPO clip), rloo (leave-one-out, sequence clip), reinforce_pp (batch
  centring), remax (greedy baseline) → π* = π_ref·exp(r/β)/Z, the KL-regularised optimum.
- KL in the loss with a leave-one-out baseline: k3_ratio (TRL's ``use_bias_correction_kl``) → π*;
  DeepSeekMath's k3 without the ratio → the forward-KL point β·π_ref/(β + r̄ − r) (METHODS disagreement 7).
- GRPO's group-mean baseline counts the sample itself, which scales the policy gradient by (K − 1)/K:
  with KL in the loss its limits are the same two closed forms at β' = β·K/(K − 1).
All limits are asserted to TV < 1e-6; the two KL forms are asserted to lie far apart.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs
from alignlab.objectives.kl_estimators import KL_ESTIMATORS, kl_penalised_rewards
from alignlab.objectives.policy_losses import POLICY_LOSSES

REF = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
REWARD = torch.tensor([0.0, 0.3, 0.6, 1.0], dtype=torch.float64)
BETA = 0.5
ACTIONS = len(REF)


def reverse_kl_optimum(beta: float) -> np.ndarray:
    """argmax_π E_π[r] − β·KL(π‖π_ref) = π_ref·exp(r/β)/Z."""
    w = REF.numpy() * np.exp(REWARD.numpy() / beta)
    return w / w.sum()


def forward_kl_point(beta: float) -> np.ndarray:
    """Stationary point of E_π[r] − β·KL(π_ref‖π): π(a) = β·π_ref(a)/(β + r̄ − r(a)) with r̄ = E_π[r],
    r̄ found by bisection on Σ_a π(a) = 1 (the sum decreases in r̄ on r̄ > max r − β)."""
    ref, r = REF.numpy(), REWARD.numpy()
    lo, hi = r.max() - beta + 1e-12, r.max() + 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        total = (beta * ref / (beta + mid - r)).sum()
        lo, hi = (mid, hi) if total > 1 else (lo, mid)
    return beta * ref / (beta + lo - r)


def groups_of(k: int) -> torch.Tensor:
    """Every K-tuple of actions, [A^K, K]."""
    return torch.tensor(list(itertools.product(range(ACTIONS), repeat=k)))


def expected(per_sample: torch.Tensor, actions: torch.Tensor, pi_old: torch.Tensor) -> torch.Tensor:
    """E over groups of the group's mean loss: Σ_g Π_i π_old(a_gi) · mean_i loss_gi."""
    weight = pi_old[actions].prod(-1)
    return (weight * per_sample.mean(-1)).sum()


def one_token(x: torch.Tensor) -> torch.Tensor:
    return x[..., None]


def ppo_loss(logits: torch.Tensor) -> torch.Tensor:
    logp, ref = logits.log_softmax(-1), REF.log()
    old = logp.detach()
    actions = groups_of(1)  # one sample per group, every action
    lp, lo, lr = one_token(logp[actions]), one_token(old[actions]), one_token(ref[actions])
    mask = torch.ones_like(lp)
    kl = KL_ESTIMATORS("k1", lo, lr, None)
    token_rewards = kl_penalised_rewards(REWARD[actions], kl, mask, BETA)
    values = torch.zeros_like(token_rewards)  # any baseline leaves the exact expected gradient unchanged
    adv = ADVANTAGES(
        "gae", AdvantageInputs(token_rewards, mask, values), gamma=1.0, lam=1.0, whiten=False
    ).advantages
    loss, _ = POLICY_LOSSES("ppo_clip", lp, lo, adv, mask)
    return expected(loss[..., 0], actions, old.exp())


def rloo_loss(logits: torch.Tensor, k: int = 2) -> torch.Tensor:
    logp, ref = logits.log_softmax(-1), REF.log()
    old = logp.detach()
    actions = groups_of(k)
    lp, lo, lr = one_token(logp[actions]), one_token(old[actions]), one_token(ref[actions])
    mask = torch.ones_like(lp)
    kl = KL_ESTIMATORS("k1", lo, lr, None)
    rewards = kl_penalised_rewards(REWARD[actions], kl, mask, BETA, per_token=False)
    adv = ADVANTAGES("rloo", AdvantageInputs(rewards)).advantages
    loss, _ = POLICY_LOSSES("sequence_clip", lp, lo, adv, mask)
    return expected(loss[..., 0], actions, old.exp())


def reinforce_pp_loss(logits: torch.Tensor, batch: int = 2, std: str = "none") -> torch.Tensor:
    logp, ref = logits.log_softmax(-1), REF.log()
    old = logp.detach()
    actions = groups_of(batch)  # every batch of `batch` samples; statistics are per batch
    lp, lo, lr = one_token(logp[actions]), one_token(old[actions]), one_token(ref[actions])
    mask = torch.ones_like(lp)
    token_rewards = kl_penalised_rewards(REWARD[actions], KL_ESTIMATORS("k1", lo, lr, None), mask, BETA)
    adv = torch.stack(
        [
            ADVANTAGES("reinforce_pp", AdvantageInputs(token_rewards[b : b + 1], mask[b : b + 1]), std=std)[
                0
            ][0]
            for b in range(actions.shape[0])
        ]
    )
    loss, _ = POLICY_LOSSES("ppo_clip", lp, lo, adv, mask)
    return expected(loss[..., 0], actions, old.exp())


def remax_loss(logits: torch.Tensor) -> torch.Tensor:
    logp, ref = logits.log_softmax(-1), REF.log()
    old = logp.detach()
    actions = groups_of(1)
    lp, lo, lr = one_token(logp[actions]), one_token(old[actions]), one_token(ref[actions])
    mask = torch.ones_like(lp)
    rewards = kl_penalised_rewards(
        REWARD[actions], KL_ESTIMATORS("k1", lo, lr, None), mask, BETA, per_token=False
    )
    greedy = int(old.argmax())
    greedy_reward = REWARD[greedy] - BETA * (old[greedy] - ref[greedy])
    baseline = greedy_reward.expand(actions.shape[0])
    adv = ADVANTAGES("remax", AdvantageInputs(rewards, baseline=baseline)).advantages
    loss, _ = POLICY_LOSSES("reinforce", lp, lo, adv, mask)
    return expected(loss[..., 0], actions, old.exp())


def kl_in_loss(logits: torch.Tensor, estimator: str, advantage: str, k: int) -> torch.Tensor:
    """GRPO-style: reward without KL, advantages per group, β·KL estimate added to the per-token loss."""
    logp, ref = logits.log_softmax(-1), REF.log()
    old = logp.detach()
    actions = groups_of(k)
    lp, lo, lr = one_token(logp[actions]), one_token(old[actions]), one_token(ref[actions])
    mask = torch.ones_like(lp)
    params = {"scale": "none"} if advantage == "grpo" else {}
    adv = ADVANTAGES(advantage, AdvantageInputs(REWARD[actions]), **params).advantages
    loss, _ = POLICY_LOSSES("ppo_clip", lp, lo, adv, mask)
    loss = loss + BETA * KL_ESTIMATORS(estimator, lp, lr, lo)
    return expected(loss[..., 0], actions, old.exp())


def train(loss_fn, steps: int = 4000, lr: float = 4.0) -> np.ndarray:
    logits = torch.zeros(ACTIONS, dtype=torch.float64, requires_grad=True)
    for _ in range(steps):
        (grad,) = torch.autograd.grad(loss_fn(logits), logits)
        with torch.no_grad():
            logits -= lr * grad
        if grad.abs().max() < 1e-13:
            break
    return logits.detach().softmax(-1).numpy()


def tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


STAR = reverse_kl_optimum(BETA)


@pytest.mark.parametrize(
    "name, loss_fn",
    [("ppo", ppo_loss), ("rloo", rloo_loss), ("reinforce_pp", reinforce_pp_loss), ("remax", remax_loss)],
)
def test_kl_in_reward_converges_to_the_regularised_optimum(name, loss_fn):
    assert tv(train(loss_fn), STAR) < 1e-6, name


def test_kl_in_loss_ratio_corrected_k3_converges_to_the_optimum_and_plain_k3_to_forward_kl():
    with_ratio = train(lambda x: kl_in_loss(x, "k3_ratio", "rloo", 2))
    plain = train(lambda x: kl_in_loss(x, "k3", "rloo", 2))
    assert tv(with_ratio, STAR) < 1e-6
    assert tv(plain, forward_kl_point(BETA)) < 1e-6
    assert tv(STAR, forward_kl_point(BETA)) > 0.1  # the test tells the two forms apart


def test_grpo_group_mean_baseline_scales_beta_by_k_over_k_minus_1():
    k = 3
    beta_eff = BETA * k / (k - 1)
    with_ratio = train(lambda x: kl_in_loss(x, "k3_ratio", "grpo", k))
    plain = train(lambda x: kl_in_loss(x, "k3", "grpo", k))
    assert tv(with_ratio, reverse_kl_optimum(beta_eff)) < 1e-6
    assert tv(plain, forward_kl_point(beta_eff)) < 1e-6
    assert tv(with_ratio, plain) > 0.05


def test_whitened_reinforce_pp_has_the_optimum_as_fixed_point():
    # With KL in the reward the shaped reward is constant (β·log Z) at π*, so every baseline or whitening
    # gives zero advantages there: π* is a fixed point of the whitened estimator too (either variance).
    logits = torch.tensor(np.log(STAR), dtype=torch.float64, requires_grad=True)
    for std in ("unbiased", "population"):
        (grad,) = torch.autograd.grad(reinforce_pp_loss(logits, std=std), logits)
        assert grad.abs().max() < 1e-12


def test_remax_greedy_baseline_is_unbiased():
    # METHODS remax: with a deterministic greedy arm, E[A·∇log π] equals the exact ∇E_π[r] (β = 0).
    logits = torch.tensor([0.3, -0.2, 0.9, 0.1], dtype=torch.float64, requires_grad=True)
    logp = logits.log_softmax(-1)
    old = logp.detach()
    actions = groups_of(1)
    greedy = int(old.argmax())
    adv = ADVANTAGES(
        "remax", AdvantageInputs(REWARD[actions], baseline=REWARD[greedy].expand(ACTIONS))
    ).advantages
    mask = torch.ones(ACTIONS, 1, 1, dtype=torch.float64)
    loss, _ = POLICY_LOSSES("reinforce", one_token(logp[actions]), one_token(old[actions]), adv, mask)
    (estimated,) = torch.autograd.grad(-expected(loss[..., 0], actions, old.exp()), logits)
    (exact,) = torch.autograd.grad((logits.softmax(-1) * REWARD).sum(), logits)
    torch.testing.assert_close(estimated, exact, atol=1e-12, rtol=0)
    assert adv[greedy].item() == 0.0  # the greedy sample's own advantage is exactly 0
