"""The rollout source's refresh, step by step, against values computed here independently (numpy, plain
forward passes): records from the sampled ids, judge inputs, old/reference log-probs, reward shaping,
advantages, serving, errors, and its state for resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.config import ConfigError
from alignlab.models.tiny import save_tiny
from alignlab.train.rollout_judging import RolloutStopped
from tests.train._online import manual_token_logps, setup_trainer

JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


def script(i, j, params):
    """Prompt i, sample j: ids 10+i+j, 20+j, EOS (odd samples stop early: no EOS, to test the flag)."""
    return [10 + i + j, 20 + j, 2] if j % 2 == 0 else [11 + i + j, 30 + j, 40, 41]


def test_grpo_refresh_keeps_the_sampled_ids_and_scores_them(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        [
            JUDGE, "online.prompts_per_rollout=3", "online.sampling.n=4", "online.sampling.max_new_tokens=4",
            "online.epochs_per_rollout=2",  # trained on twice: the old-log-prob pass runs
        ],
        script,
        monkeypatch,
    )  # fmt: skip
    source = trainer.source
    eos = trainer.context.tokenizer.eos_token_id
    ids = source.next_ids()
    assert ids == [0, 1, 2] and source.refreshes == 1
    policy = trainer.context.unwrapped_policy()
    rewards = []
    for g, group in enumerate(source.data.groups):
        for j, completion in enumerate(group.completion_ids):
            expected = [10 + g + j, 20 + j, eos] if j % 2 == 0 else [11 + g + j, 30 + j, 40, 41]
            assert completion == expected  # the sampled ids themselves, EOS kept, nothing re-tokenised
            rewards.append(float(expected[0] % 2 == 0))
            old = group.rollout["old_logps"][j, : len(completion)]
            manual = manual_token_logps(policy, group.prompt_ids, completion)
            assert torch.allclose(old, manual, atol=1e-5)
    # GRPO advantage: (R - group mean) / (Bessel std + 1e-4), on every real token
    r = np.array(rewards).reshape(3, 4)
    std = r.std(1, ddof=1, keepdims=True)
    expected = (r - r.mean(1, keepdims=True)) / (std + 1e-4)
    for g, group in enumerate(source.data.groups):
        for j, completion in enumerate(group.completion_ids):
            adv = group.rollout["advantages"][j]
            assert np.allclose(adv[: len(completion)].numpy(), expected[g, j], atol=1e-6)
            assert float(adv[len(completion) :].abs().sum()) == 0.0
    assert source.metrics["eos_rate"] == 0.5
    assert source.metrics["reward/mean"] == pytest.approx(r.mean())


def test_kl_in_the_reward_and_missing_eos_penalty_give_reinforce_pp_advantages(tmp_path, monkeypatch):
    reference = save_tiny(tmp_path / "reference", "llama", seed=3)
    beta, penalty = 0.1, 0.5
    trainer = setup_trainer(
        tmp_path,
        [
            JUDGE, "objectives=[{name: reinforce_pp}]", f"reference.path={reference}",
            f"online.kl={{coef: {beta}, estimator: k1}}", f"online.reward.missing_eos_penalty={penalty}",
            "online.prompts_per_rollout=2", "online.sampling.n=2", "online.sampling.max_new_tokens=4",
        ],
        script,
        monkeypatch,
    )  # fmt: skip
    source = trainer.source
    source.next_ids()
    policy = trainer.context.unwrapped_policy()
    ref_model = trainer.source.reference()
    eos = trainer.context.tokenizer.eos_token_id
    returns, masks = [], []
    for group in source.data.groups:
        for completion in group.completion_ids:
            old = manual_token_logps(policy, group.prompt_ids, completion).numpy().astype(np.float64)
            ref = manual_token_logps(ref_model, group.prompt_ids, completion).numpy().astype(np.float64)
            reward = float(completion[0] % 2 == 0) - (penalty if completion[-1] != eos else 0.0)
            token_rewards = -beta * (old - ref)
            token_rewards[-1] += reward
            row = np.zeros(4)
            row[: len(completion)] = np.cumsum(token_rewards[::-1])[::-1]  # reward-to-go, γ = 1
            returns.append(row)
            masks.append(np.arange(4) < len(completion))
    returns, masks = np.array(returns), np.array(masks)
    values = returns[masks]
    whitened = (returns - values.mean()) / math.sqrt(values.var(ddof=1) + 1e-8)
    got = np.stack([g.rollout["advantages"][j, :4].numpy() for g in source.data.groups for j in range(2)])
    assert np.allclose(got[masks], whitened[masks], atol=1e-4)
    stored_ref = np.stack(
        [g.rollout["ref_logps"][j, :4].numpy() for g in source.data.groups for j in range(2)]
    )
    assert stored_ref.shape == (4, 4)


def test_a_rollout_serves_epochs_times_minibatches_steps_of_whole_groups(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, "online.prompts_per_rollout=4", "online.sampling.n=2", "online.minibatches=2",
         "online.epochs_per_rollout=2"],
        script,
        monkeypatch,
    )  # fmt: skip
    source = trainer.source
    steps = [source.next_ids() for s in range(1, 5)]
    assert source.refreshes == 1
    for epoch in (steps[:2], steps[2:]):
        assert sorted(epoch[0] + epoch[1]) == [0, 1, 2, 3]  # each epoch covers every group once
    source.next_ids()
    assert source.refreshes == 2


def test_remax_advantage_is_zero_when_the_sample_is_the_greedy_answer(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, "objectives=[{name: remax}]", "online.prompts_per_rollout=3", "online.sampling.n=1"],
        lambda i, j, params: [10 + i, 2],  # greedy and sampled completions coincide
        monkeypatch,
    )
    trainer.source.next_ids()
    sampler = trainer.source.sampler
    assert [c.temperature for c in sampler.calls] == [1.0, 0.0]  # the sample, then the greedy baseline
    for group in trainer.source.data.groups:
        assert float(group.rollout["advantages"].abs().sum()) == 0.0


def test_state_dict_restores_the_live_rollout(tmp_path, monkeypatch):
    overrides = [JUDGE, "online.prompts_per_rollout=4", "online.sampling.n=2", "online.minibatches=2"]
    trainer = setup_trainer(tmp_path / "a", overrides, script, monkeypatch)
    trainer.source.next_ids()
    state = trainer.source.state_dict()
    again = setup_trainer(tmp_path / "b", overrides, script, monkeypatch)
    again.source.load_state_dict(state)
    assert again.source.next_ids() == trainer.source.next_ids()  # the second minibatch of the same rollout
    assert again.source.refreshes == 1 and again.source.sampler.calls == []  # served without sampling
    for a, b in zip(again.source.data.groups, trainer.source.data.groups):
        assert a.completion_ids == b.completion_ids
        assert torch.equal(a.rollout["advantages"], b.rollout["advantages"])


def test_a_judge_returning_nan_stops_with_the_prompt_and_the_checkpoint(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        ["online.judge={name: reward_function, function: 'tests.train._online:nan_for_second'}",
         "online.prompts_per_rollout=2", "online.sampling.n=2"],
        script,
        monkeypatch,
    )  # fmt: skip
    with pytest.raises(RolloutStopped) as err:
        trainer.source.next_ids()
    text = str(err.value)
    prompt = trainer.source.rows[trainer.source._order(len(trainer.source.rows), 0)[0]].prompt
    assert "nan" in text and repr(prompt[:80]) in text and "last checkpoint: none" in text


def test_a_judge_that_raises_names_the_prompt_at_fault(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        ["online.judge={name: reward_function, function: 'tests.train._online:raises_on_seven'}",
         "online.prompts_per_rollout=64", "online.sampling.n=2"],
        script,
        monkeypatch,
    )  # fmt: skip
    with pytest.raises(RolloutStopped) as err:
        trainer.source.next_ids()
    assert "the scoring service is down" in str(err.value)
    assert "7" in str(err.value).split("on prompt")[1].split(":")[0]


def test_long_prompts_are_reported_not_cut(tmp_path, monkeypatch, capsys):
    from alignlab.data.prompts import load_prompts
    from alignlab.data.tokenize import encode_prompts
    from alignlab.models.tiny import tiny_tokenizer

    lengths = [
        len(ids)
        for ids, _ in encode_prompts(tiny_tokenizer(), [r.prompt for r in load_prompts("builtin:sorting")])
    ]
    limit = min(lengths)  # sorting prompts have 3-5 numbers: the shortest stay, the others go
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, "online.prompts=builtin:sorting", f"online.max_prompt_length={limit}"],
        script,
        monkeypatch,
    )
    kept = [len(ids) for ids in trainer.source.prompt_ids]
    assert len(kept) == lengths.count(limit) and set(kept) == {limit}  # kept whole, none cut
    err = capsys.readouterr().err
    assert (
        f"{len(lengths) - len(kept)} of {len(lengths)} prompts are longer than online.max_prompt_length"
        in err
    )
    with pytest.raises(ConfigError, match="every prompt is longer"):
        setup_trainer(tmp_path / "b", [JUDGE, "online.max_prompt_length=2"], script, monkeypatch)


def test_a_sampler_that_never_stops_is_flagged(tmp_path, monkeypatch, capsys):
    trainer = setup_trainer(
        tmp_path, [JUDGE, "online.prompts_per_rollout=2"], lambda i, j, p: [5, 6, 7], monkeypatch
    )
    trainer.source.next_ids()
    assert trainer.source.metrics["eos_rate"] == 0.0
    assert "hit max_new_tokens" in capsys.readouterr().err


def test_old_logps_are_scored_at_the_sampling_temperature(tmp_path):
    trainer = setup_trainer(
        tmp_path,
        [
            JUDGE, "online.prompts_per_rollout=2", "online.sampling.n=2", "online.sampling.temperature=0.7",
            "online.epochs_per_rollout=2",
        ],
    )  # the real sampler  # fmt: skip
    source = trainer.source
    source.next_ids()
    policy = trainer.context.unwrapped_policy()
    for group in source.data.groups:
        for j, completion in enumerate(group.completion_ids):
            manual = manual_token_logps(policy, group.prompt_ids, completion, temperature=0.7)
            assert torch.allclose(group.rollout["old_logps"][j, : len(completion)], manual, atol=1e-5)
