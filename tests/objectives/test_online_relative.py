"""p3o, drpo and trpa as online objectives: values against the pure functions (themselves tested against
closed forms) and independence from how the step is cut into micro-batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.objectives.compose import Normalisers
from alignlab.objectives.drpo import drpo_loss
from alignlab.objectives.online_relative import drpo, p3o, trpa
from alignlab.objectives.p3o import p3o_pair_loss
from alignlab.objectives.registry import get
from alignlab.objectives.trpa import trpa_loss
from alignlab.objectives.views import RolloutBatch
from alignlab.scoring.scores import Scores

D = torch.float64


def _batch(
    groups: int, k: int, seed: int = 0, rewards: list[float] | None = None
) -> tuple[RolloutBatch, torch.Tensor]:
    rng = np.random.default_rng(seed)
    t = 5
    lengths = rng.integers(2, t + 1, size=groups * k)
    mask = torch.tensor([[1.0] * n + [0.0] * (t - n) for n in lengths], dtype=D)
    logps = torch.tensor(rng.normal(-1.0, 0.3, size=(groups * k, t)), dtype=D, requires_grad=True)
    old = (logps.detach() + torch.tensor(rng.normal(0, 0.1, size=(groups * k, t)))) * mask
    ref = (logps.detach() + torch.tensor(rng.normal(0, 0.2, size=(groups * k, t)))) * mask
    r = torch.tensor(
        rewards if rewards is not None else rng.integers(0, 2, size=groups * k).tolist(), dtype=D
    )
    grouped = r.reshape(groups, k)
    loo = (grouped * k - grouped.sum(1, keepdim=True)) / (k - 1)  # R_i − mean of the others, K/(K−1)·(R − R̄)
    advantages = (loo.reshape(-1)[:, None] * mask).float().double()
    rollout = {
        "old_logps": old,
        "ref_logps": ref,
        "advantages": advantages,
        "rewards": r,
        "length_norm": torch.full((groups * k,), float(t)),
    }
    items = Scores(logps=(logps * mask).sum(-1), lengths=mask.sum(-1), token_logps=logps, token_mask=mask)
    group_index = torch.arange(groups).repeat_interleave(k)
    return RolloutBatch(items, rollout, group_index, torch.ones(groups * k, dtype=D)), logps


def _split(batch: RolloutBatch, groups: list[int]) -> RolloutBatch:
    rows = torch.cat([torch.nonzero(batch.group_index == g).flatten() for g in groups])
    items = Scores(
        logps=batch.items.logps[rows], lengths=batch.items.lengths[rows],
        token_logps=batch.items.token_logps[rows], token_mask=batch.items.token_mask[rows],
    )  # fmt: skip
    rollout = {k: v[rows] for k, v in batch.rollout.items()}
    return RolloutBatch(items, rollout, batch.group_index[rows], batch.weight[rows])


def _norm(batch: RolloutBatch) -> Normalisers:
    mask = batch.mask
    return Normalisers(
        weight=float(len(mask)), tokens=float(mask.sum()), sequences=float(len(mask)),
        groups=float(torch.unique(batch.group_index).numel()),
    )  # fmt: skip


@pytest.mark.parametrize(
    "fn,params,k",
    [
        (p3o, {"variant": "separate"}, 2),
        (p3o, {"variant": "joint"}, 2),
        (drpo, {"beta": 0.0}, 4),
        (trpa, {}, 4),
    ],
)
def test_a_step_cut_in_two_gives_the_same_loss_and_gradients(fn, params, k):
    batch, logps = _batch(groups=4, k=k, seed=1)
    whole, _ = fn(batch, **params, normalisers=_norm(batch))
    (g_whole,) = torch.autograd.grad(whole, logps)
    parts = [fn(_split(batch, half), **params, normalisers=_norm(batch))[0] for half in ([0, 2], [1, 3])]
    total = parts[0] + parts[1]
    (g_parts,) = torch.autograd.grad(total, logps)
    assert float(total) == pytest.approx(float(whole), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(g_parts.numpy(), g_whole.numpy(), rtol=1e-9, atol=1e-12)


def test_drpo_trust_region_coefficient_uses_the_step_kl():
    """The loop folds Σ k3 and the token count of both halves before the loss; each half's penalty is then
    sg(max(β(KL_step − δ), 0))·(its share of KL_step), and the halves add up to the uncut step (numpy KL)."""
    batch, logps = _batch(groups=4, k=4, seed=1)
    spec, beta, delta = get("drpo"), 10.0, 1e-4
    halves = [_split(batch, half) for half in ([0, 2], [1, 3])]
    state: dict = {}
    spec.step_statistics.fold(state, sum(spec.step_statistics.gather(h, {}) for h in halves), {})
    mask, log_ratio = batch.mask.numpy(), (logps.detach() - batch.get("old_logps")).numpy()
    kl = ((np.exp(log_ratio) - log_ratio - 1) * mask).sum() / mask.sum()
    assert state["kl"] == pytest.approx(kl, rel=1e-12) and beta * (kl - delta) > 0  # the term is on
    whole, _ = drpo(batch, state={}, beta=beta, delta=delta, normalisers=_norm(batch))
    (g_whole,) = torch.autograd.grad(whole, logps)
    total = sum(drpo(h, state=state, beta=beta, delta=delta, normalisers=_norm(batch))[0] for h in halves)
    (g_parts,) = torch.autograd.grad(total, logps)
    assert float(total) == pytest.approx(float(whole), rel=1e-10)
    np.testing.assert_allclose(g_parts.numpy(), g_whole.numpy(), rtol=1e-9, atol=1e-12)
    without, _ = drpo(batch, state=None, beta=0.0, normalisers=_norm(batch))
    assert float(whole) - float(without) == pytest.approx(beta * (kl - delta) * kl, rel=1e-9)
    # Each half's own KL (the official per-micro-batch coefficient) would give a different loss.
    own = sum(drpo(h, state=None, beta=beta, delta=delta, normalisers=_norm(batch))[0] for h in halves)
    assert abs(float(own) - float(whole)) > 1e-6


@pytest.mark.parametrize("variant", ["separate", "joint"])
def test_p3o_objective_is_the_mean_pair_loss(variant):
    batch, logps = _batch(groups=3, k=2, seed=2, rewards=[1, 0, 0, 0, 0.5, 1])
    got, _ = p3o(batch, variant=variant)
    seq = (logps * batch.mask).sum(-1).reshape(3, 2)
    old = (batch.get("old_logps") * batch.mask).sum(-1).reshape(3, 2)
    expected = p3o_pair_loss(seq, old, batch.get("rewards").reshape(3, 2), variant=variant).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-12)
    with pytest.raises(ValueError, match="exactly 2 completions"):
        p3o(_batch(groups=2, k=3)[0])


def test_drpo_objective_matches_drpo_loss_at_the_first_update():
    batch, logps = _batch(groups=3, k=4, seed=3, rewards=[1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0])
    batch.rollout["old_logps"] = logps.detach() * batch.mask  # first update: ratio 1, trust region 0
    got, metrics = drpo(batch)
    expected, _ = drpo_loss(logps, logps.detach(), batch.mask, batch.group_index, batch.get("rewards"), 5)
    assert float(got) == pytest.approx(float(expected), rel=1e-12)
    assert float(metrics["drpo_prompts"]) == 2  # the all-correct prompt adds nothing


def test_trpa_objective_is_the_mean_over_prompts_of_the_pair_loss():
    rewards = [1, 0, 0, -1, 1, 1, 1, 1, 0, 1, -1, 1]  # the second prompt has one level: no pair
    batch, logps = _batch(groups=3, k=4, seed=4, rewards=rewards)
    got, metrics = trpa(batch, trust_region_coef=0.0)
    mask = batch.mask
    ell = (logps * mask).sum(-1) / mask.sum(-1)
    ref = (batch.get("ref_logps") * mask).sum(-1) / mask.sum(-1)
    levels = torch.tensor([{1: 1, 0: 2, -1: 3}[r] for r in rewards])
    one = torch.zeros(4, dtype=torch.long)
    per_prompt = [trpa_loss(ell[i : i + 4], ref[i : i + 4], levels[i : i + 4], one) for i in (0, 8)]
    assert float(got) == pytest.approx(float(sum(per_prompt) / 3), rel=1e-12)
    assert float(metrics["prompts_with_pairs"]) == 2
