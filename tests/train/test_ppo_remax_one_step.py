"""One PPO step and one ReMax step on a fixed rollout, against references written here independently.

PPO: verl's rollout-to-loss path, read in volcengine/verl (commit b178a3cd5) and transcribed in numpy below:
``verl/trainer/ppo/core_algos.py`` ``compute_rewards`` (score − kl_ratio·(log π_old − log π_ref)),
``compute_gae_advantage_return`` (masked reverse loop, returns = A + V, then ``masked_whiten`` from
``verl/utils/torch_functional.py`` with the Bessel-corrected variance and +1e-8), ``compute_policy_loss_vanilla``
(ratio exp(clamp(log π − log π_old, ±20)), max(−Aρ, −A·clip(ρ)), dual clip min(·, −A·c) for A < 0, c = 3),
``compute_value_loss`` (½·max((V − G)², (clip(V, V_old ± ε_v) − G)²)) and ``agg_loss("token-mean")``; the
actor and critic losses are summed with ``vf_coef`` as TRL's PPO does. The gradient of that loss with
respect to each token's log-prob and value is written out in numpy too, and carried to the weights by one
backward pass through a plain forward of the model (no alignlab engine): loss and every weight gradient of
alignlab's step agree within 1e-5.

ReMax: A = r(x, y) − r(x, ȳ) with ȳ the greedy completion, on every token of y; loss = mean_i −A_i·Σ_t log π(y_t)
(Li et al. 2023, Alg. 1; verl ``compute_remax_outcome_advantage``), checked by hand.
"""

from __future__ import annotations

import numpy as np
import torch

from alignlab.models.tiny import save_tiny
from alignlab.train.step import train_step
from tests.train._online import setup_trainer

JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"
BETA, GAMMA, LAM, EPS, EPS_V, VF_COEF, DUAL = 0.05, 0.97, 0.9, 0.2, 0.02, 0.1, 3.0


def script(i, j, params):
    """Prompt i, sample j: even samples end with EOS (id 2), odd ones are cut; first ids of both parities."""
    return [10 + i + j, 20 + j, 2] if j % 2 == 0 else [11 + i + j, 30 + j, 40, 41]


def forward(model, prompt_ids, completion_ids):
    """log π(c_t | prompt, c_<t) and V(s_t) at each completion position, by one plain forward pass."""
    ids = torch.tensor([prompt_ids + completion_ids])
    out = model(input_ids=ids, output_hidden_states=True)
    start, n = len(prompt_ids) - 1, len(completion_ids)
    logp = out.logits[0, start : start + n].float().log_softmax(-1)
    logp = logp.gather(-1, torch.tensor(completion_ids)[:, None])[:, 0]
    values = (
        model.value_head(out.hidden_states[-1][0, start : start + n])
        if hasattr(model, "value_head")
        else None
    )
    return logp, values


def padded(rows, width):
    out = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def verl_ppo_loss_and_grads(old, ref, logp, values, old_values, scores, mask):
    """verl's PPO loss (see the module docstring) and its gradient w.r.t. logp and values, all [B, T]."""
    last = mask.sum(1).astype(int) - 1
    token_scores = np.zeros_like(mask)
    token_scores[np.arange(len(last)), last] = scores
    rewards = token_scores - (old - ref) * BETA  # compute_rewards
    # compute_gae_advantage_return
    nextvalues, lastgaelam, out = np.zeros(len(mask)), np.zeros(len(mask)), []
    for t in reversed(range(mask.shape[1])):
        delta = rewards[:, t] + GAMMA * nextvalues - old_values[:, t]
        current = delta + GAMMA * LAM * lastgaelam
        nextvalues = old_values[:, t] * mask[:, t] + (1 - mask[:, t]) * nextvalues
        lastgaelam = current * mask[:, t] + (1 - mask[:, t]) * lastgaelam
        out.append(lastgaelam)
    adv = np.stack(out[::-1], 1)
    returns = adv + old_values
    mean = (adv * mask).sum() / (mask.sum() + 1e-8)  # masked_whiten
    var = ((adv - mean) ** 2 * mask).sum() / (mask.sum() + 1e-8) * mask.sum() / (mask.sum() - 1)
    adv = (adv - mean) / np.sqrt(var + 1e-8)
    # compute_policy_loss_vanilla
    ratio = np.exp(np.clip(logp - old, -20, 20))
    l1, l2, l3 = -adv * ratio, -adv * np.clip(ratio, 1 - EPS, 1 + EPS), -adv * DUAL
    inside = (ratio > 1 - EPS) & (ratio < 1 + EPS)
    c1 = np.maximum(l1, l2)
    d_c1 = np.where(l1 >= l2, -adv * ratio, np.where(inside, -adv * ratio, 0.0))
    pg = np.where(adv < 0, np.minimum(l3, c1), c1)
    d_pg = np.where((adv < 0) & (l3 < c1), 0.0, d_c1)
    # compute_value_loss
    clipped = np.clip(values, old_values - EPS_V, old_values + EPS_V)
    f1, f2 = (values - returns) ** 2, (clipped - returns) ** 2
    in_range = (values > old_values - EPS_V) & (values < old_values + EPS_V)
    d_vf = np.where(f1 >= f2, 2 * (values - returns), np.where(in_range, 2 * (clipped - returns), 0.0))
    n = mask.sum()  # agg_loss("token-mean")
    loss = (pg * mask).sum() / n + VF_COEF * 0.5 * (np.maximum(f1, f2) * mask).sum() / n
    clip_fraction = ((l2 > l1) * mask).sum() / n
    value_clipped = ((f2 > f1) * mask).sum() / n
    return loss, d_pg * mask / n, VF_COEF * 0.5 * d_vf * mask / n, (clip_fraction, value_clipped)


def test_one_ppo_step_equals_verl(tmp_path, monkeypatch):
    reference = save_tiny(tmp_path / "reference", "llama", seed=3)
    trainer = setup_trainer(
        tmp_path,
        [
            JUDGE, f"reference.path={reference}", f"online.kl={{coef: {BETA}, estimator: k1}}",
            f"objectives=[{{name: ppo, gamma: {GAMMA}, lam: {LAM}, epsilon: {EPS}, cliprange_value: {EPS_V}, "
            f"vf_coef: {VF_COEF}, dual_clip: {DUAL}}}]",
            "online.prompts_per_rollout=2", "online.sampling.n=2", "online.sampling.max_new_tokens=4",
        ],
        script,
        monkeypatch,
    )  # fmt: skip
    batch = trainer.source.next()  # the rollout: sampled (scripted), judged, old log-probs and values
    policy = trainer.context.unwrapped_policy()
    ref_model = trainer.source.reference()
    pairs = [(g.prompt_ids, c) for g in batch.groups for c in g.completion_ids]
    with torch.no_grad():
        old = [forward(policy, p, c) for p, c in pairs]
        ref = [forward(ref_model, p, c)[0] for p, c in pairs]
    # the policy moves away from the sampling policy, so ratios leave [1 - ε, 1 + ε] and values their clip
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.5 * param.abs().mean() * torch.randn(param.shape, generator=generator))
    # alignlab: one step's forward and backward (no optimiser step)
    policy.zero_grad(set_to_none=True)
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    ours = {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}
    # the reference: verl in numpy, carried to the weights through a plain forward pass
    policy.zero_grad(set_to_none=True)
    current = [forward(policy, p, c) for p, c in pairs]
    width = max(len(c) for _, c in pairs)
    mask = padded([[1.0] * len(c) for _, c in pairs], width)
    as_np = lambda rows: padded([r.detach().double().numpy() for r in rows], width)  # noqa: E731
    scores = np.array([float(c[0] % 2 == 0) for _, c in pairs])
    loss, d_logp, d_values, (clip_fraction, value_clipped) = verl_ppo_loss_and_grads(
        as_np([o[0] for o in old]), as_np(ref), as_np([x[0] for x in current]),
        as_np([x[1] for x in current]), as_np([o[1] for o in old]), scores, mask,
    )  # fmt: skip
    assert 0 < clip_fraction < 1 and 0 < value_clipped < 1  # both branches of both clips are exercised
    surrogate = sum(
        (torch.tensor(d_logp[i, : len(c)], dtype=torch.float32) * current[i][0]).sum()
        + (torch.tensor(d_values[i, : len(c)], dtype=torch.float32) * current[i][1]).sum()
        for i, (_, c) in enumerate(pairs)
    )
    surrogate.backward()
    want = {name: p.grad for name, p in policy.named_parameters() if p.grad is not None}
    assert abs(metrics["loss"] - loss) < 1e-5
    assert metrics["clip_fraction"] == pytest_approx(clip_fraction)
    assert ours.keys() == want.keys() and any(k.startswith("value_head") for k in ours)
    for name in want:
        torch.testing.assert_close(ours[name], want[name], rtol=0, atol=1e-5, msg=name)
    assert max(float(g.abs().max()) for g in want.values()) > 1e-3  # not a comparison of zeros


def pytest_approx(value):
    import pytest

    return pytest.approx(value, abs=1e-6)


def greedy_or_sampled(i, j, params):
    """Greedy (temperature 0): first id 12 (reward 1). Samples: first ids 13 and 14 (rewards 0 and 1)."""
    if params.temperature == 0:
        return [12, 20, 2]
    return [13 + j, 21 + j, 2]


def test_one_remax_step_by_hand(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, "objectives=[{name: remax}]", "online.prompts_per_rollout=2", "online.sampling.n=2"],
        greedy_or_sampled,
        monkeypatch,
    )
    batch = trainer.source.next()
    policy = trainer.context.unwrapped_policy()
    # A = r(sampled) - r(greedy) = [0 - 1, 1 - 1] for each prompt, on every token of the completion
    for group in batch.groups:
        adv = group.rollout["advantages"]
        assert adv[0, :3].tolist() == [-1.0, -1.0, -1.0] and adv[1, :3].tolist() == [0.0, 0.0, 0.0]
    policy.zero_grad(set_to_none=True)
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    ours = {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}
    policy.zero_grad(set_to_none=True)
    # loss = mean over the 4 completions of −A·Σ_t log π(y_t) (seq_mean_token_sum); only A = −1 ones count
    pairs = [(g.prompt_ids, c) for g in batch.groups for c in g.completion_ids]
    advantages = [-1.0, 0.0, -1.0, 0.0]
    by_hand = sum(-a * forward(policy, p, c)[0].sum() for a, (p, c) in zip(advantages, pairs)) / 4
    by_hand.backward()
    assert abs(metrics["loss"] - float(by_hand.detach())) < 1e-5
    for name, p in policy.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(ours[name], p.grad, rtol=0, atol=1e-6, msg=name)
