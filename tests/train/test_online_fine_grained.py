"""fine_grained_rlhf: PPO on per-token rewards. With one segment (the whole response) it is exactly `ppo`
(METHODS test); with two segments it trains and its rollout carries the dense rewards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from alignlab.config import load_config
from alignlab.models.tiny import tiny_model
from alignlab.train.trainer import train
from tests.train._runs import weights

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, objective: str, judge: str) -> Path:
    out = tmp_path / name
    config = load_config(
        REPO / "examples" / "ppo.yaml",
        [f"out={out}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=2", "online.sampling.max_new_tokens=4", "online.epochs_per_rollout=1",
         "online.minibatches=1", "train.learning_rate=0.01", f"objectives.0.name={objective}", judge],
    )  # fmt: skip
    assert train(config).steps == 2
    return out


def test_one_segment_is_exactly_ppo(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    outcome = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"
    dense = "online.judge={name: token_reward_function, function: 'tests.train._online:first_id_parity_at_last_token'}"
    ppo = weights(_run(tmp_path, "ppo", "ppo", outcome) / "model")
    fine = weights(_run(tmp_path, "fine", "fine_grained_rlhf", dense) / "model")
    initial, _ = tiny_model("llama")
    assert max(float((ppo[k] - v).abs().max()) for k, v in initial.state_dict().items() if k in ppo) > 0
    assert ppo.keys() == fine.keys()
    for key in ppo:
        torch.testing.assert_close(fine[key], ppo[key], rtol=0, atol=0)
    a = [json.loads(x) for x in (tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "fine" / "metrics.jsonl").read_text().splitlines()]
    assert [x["loss"] for x in a] == [x["loss"] for x in b]


def test_two_segments_train_and_differ_from_one(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    split = (
        "online.judge={name: token_reward_function, function: 'tests.train._online:first_id_parity_split'}"
    )
    last = "online.judge={name: token_reward_function, function: 'tests.train._online:first_id_parity_at_last_token'}"
    two = [
        json.loads(x)
        for x in (_run(tmp_path, "two", "fine_grained_rlhf", split) / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    one = [
        json.loads(x)
        for x in (_run(tmp_path, "one", "fine_grained_rlhf", last) / "metrics.jsonl").read_text().splitlines()
    ]
    # the same first samples (same weights, same seed) and the same total reward, placed on different
    # tokens: a different update (later rollouts are sampled from the different weights)
    assert two[0]["reward/mean"] == one[0]["reward/mean"]
    assert two[0]["loss"] != pytest.approx(one[0]["loss"], abs=1e-9)


def test_the_example_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "examples" / "fine_grained_rlhf.yaml",
        [f"out={tmp_path / 'ex'}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=2", "online.sampling.max_new_tokens=4", "online.epochs_per_rollout=1",
         "online.minibatches=1"],
    )  # fmt: skip
    assert train(config).steps == 2


def test_a_scalar_judge_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    outcome = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"
    with pytest.raises(Exception, match="one per token"):
        _run(tmp_path, "bad", "fine_grained_rlhf", outcome)
