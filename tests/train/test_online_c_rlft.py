"""c_rlft on rollouts: every step mixes the expert class (data.train, after the expert tag, weight 1) with the
policy's own samples (sampled after the expert tag, trained after the sub-optimal tag, weight 0.1) in the
stated proportion; one step's loss equals the class-weighted token-mean NLL computed here from plain forward
passes; a killed run resumes to the same weights; the example trains; c_rlft still trains offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab.config import ConfigError, load_config
from alignlab.data.io import write_records
from alignlab.data.prompts import load_prompts
from alignlab.data.records import Record
from alignlab.data.tokenize import encode_prompts
from alignlab.train.step import train_step
from alignlab.train.trainer import train
from tests.train._online import setup_trainer
from tests.train._runs import kill_and_resume

REPO = Path(__file__).resolve().parents[2]
JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"
EXPERT, SUBOPTIMAL = "<E> ", "<S> "


def script(i, j, params):
    return [10 + i + j, 20 + j, 2][: 1 + (i + j) % 3]  # completions of 1-3 tokens


def expert_data(tmp_path, count=6):
    records = [Record(f"Question {i}?", [f" answer {i}"], source="gpt-4") for i in range(count)]
    return write_records(records, tmp_path / "expert.jsonl")


def overrides(data, per_step=4, prompts=3, n=2):
    objective = (
        f"objectives=[{{name: c_rlft, expert_tag: '{EXPERT}', suboptimal_tag: '{SUBOPTIMAL}', "
        "expert_weight: 1.0, suboptimal_weight: 0.1}]"
    )
    return [
        JUDGE, objective, f"data.train={data}", f"online.offline_per_step={per_step}",
        f"online.prompts_per_rollout={prompts}", f"online.sampling.n={n}", "online.sampling.max_new_tokens=3",
    ]  # fmt: skip


@torch.no_grad()
def mean_nll(model, prompt_ids, completion_ids):
    ids = torch.tensor([prompt_ids + completion_ids])
    start = len(prompt_ids) - 1
    logp = model(input_ids=ids).logits[0, start : start + len(completion_ids)].double().log_softmax(-1)
    return -float(logp.gather(-1, torch.tensor(completion_ids)[:, None]).mean())


def test_batch_mixes_both_classes_in_the_stated_proportion(tmp_path, monkeypatch):
    prompts, n, per_step = 3, 2, 4
    trainer = setup_trainer(
        tmp_path, overrides(expert_data(tmp_path), per_step, prompts, n), script, monkeypatch
    )
    rollouts = trainer.source.rollouts
    seen = []
    sample = rollouts.sampler.sample
    rollouts.sampler.sample = lambda ids, params: seen.extend(ids) or sample(ids, params)
    batch = trainer.source.next()
    tokenizer = trainer.context.tokenizer
    rows = load_prompts("builtin:arithmetic", None)

    def ids_of(text):
        return encode_prompts(tokenizer, [text])[0][0]

    # the sampler read every prompt after the EXPERT tag (the condition the policy is used with)
    assert len(seen) == prompts
    assert all(any(ids == ids_of(EXPERT + row.prompt) for row in rows) for ids in seen)
    weights, tags = [], []
    for group in batch.groups:
        record = batch.records[group.record_index]
        tag = EXPERT if record.prompt.startswith(EXPERT) else SUBOPTIMAL
        assert record.prompt.startswith(tag)
        assert group.prompt_ids == ids_of(record.prompt)  # the scored prompt is the tagged one
        for _ in group.completion_ids:
            weights.append(record.weight)
            tags.append(tag)
    # counts computed here: prompts × n policy samples, per_step expert demonstrations
    assert tags.count(SUBOPTIMAL) == prompts * n and tags.count(EXPERT) == per_step
    assert sorted(weights) == sorted([0.1] * (prompts * n) + [1.0] * per_step)
    assert all((w == 1.0) == (t == EXPERT) for w, t in zip(weights, tags))
    # the expert demonstrations are the data's, the sub-optimal ones the sampled ids
    data = {f"{EXPERT}Question {i}?": f" answer {i}" for i in range(6)}
    for group in batch.groups:
        record = batch.records[group.record_index]
        if record.prompt.startswith(EXPERT):
            assert record.completions == [data[record.prompt]]
        else:
            assert group.completion_ids in [[script(i, j, None) for j in range(n)] for i in range(prompts)]
    assert batch.metrics["mix/rollout_groups"] == prompts and batch.metrics["mix/offline_groups"] == per_step
    assert batch.metrics["mix/offline_epoch"] == per_step / 6  # 4 of the 6 expert records served


def test_one_step_loss_is_the_class_weighted_nll(tmp_path, monkeypatch):
    trainer = setup_trainer(tmp_path, overrides(expert_data(tmp_path)), script, monkeypatch)
    batch = trainer.source.next()
    policy = trainer.context.unwrapped_policy()
    losses, weights = [], []
    for group in batch.groups:
        record = batch.records[group.record_index]
        w = 1.0 if record.prompt.startswith(EXPERT) else 0.1
        for completion in group.completion_ids:
            losses.append(mean_nll(policy, group.prompt_ids, completion))
            weights.append(w)
    losses, weights = np.array(losses), np.array(weights)
    expected = float((weights * losses).sum() / weights.sum())
    assert abs(expected - losses.mean()) > 1e-3  # the weights matter on this batch
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    assert metrics["loss"] == pytest.approx(expected, abs=1e-5)


def test_online_settings_are_checked(tmp_path):
    data = expert_data(tmp_path)
    without = load_config(
        None,
        [f"out={tmp_path / 'a'}", f"data.train={data}", "train.steps=1", "train.progress=false"],
        base={"objectives": [{"name": "c_rlft"}], "online": {}},
    )
    with pytest.raises(ConfigError, match="online.offline_per_step"):
        train(without)
    grpo = load_config(
        None,
        [f"out={tmp_path / 'b'}", "train.steps=1", "train.progress=false", "online.offline_per_step=2"],
        base={"objectives": [{"name": "grpo"}], "online": {}},
    )
    with pytest.raises(ConfigError, match="trains on rollouts alone"):
        train(grpo)


def test_c_rlft_still_trains_offline(tmp_path):
    records = [Record("Q?", [" a"], source="gpt-4"), Record("Q?", [" b"], source="gpt-3.5")] * 2
    data = write_records(records, tmp_path / "mixed.jsonl")
    config = load_config(
        None,
        [f"out={tmp_path / 'off'}", f"data.train={data}", "train.steps=1", "train.progress=false"],
        base={"objectives": [{"name": "c_rlft"}]},
    )
    assert train(config).steps == 1


def test_the_example_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "examples" / "c_rlft_online.yaml",
        [f"out={tmp_path / 'ex'}", "train.steps=2", "train.progress=false", "online.log_samples_every=0"],
    )
    assert train(config).steps == 2


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    # two steps per rollout: the step-3 checkpoint holds rollout 2 half served and the expert data's position
    sets = [
        "objectives=[{name: c_rlft}]", "data.train=examples/data/c_rlft_expert.jsonl",
        "online.offline_per_step=4", "online.prompts=builtin:arithmetic@16", "online.prompts_per_rollout=4",
        "online.sampling.n=2", "online.sampling.max_new_tokens=4", "online.minibatches=2", JUDGE,
        "online.log_samples_every=0", "train.steps=6", "train.learning_rate=0.01", "train.progress=false",
        "train.save_every=3",
    ]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    assert kill_and_resume(tmp_path, args, kill_at=5) < 1e-6
