"""Every family-H core method trains end to end from its example config (the real sampler, a judge from
config) and moves the weights; `alignlab objectives` lists them as family online_rl."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from alignlab.config import load_config
from alignlab.models.tiny import tiny_model
from alignlab.objectives import all_specs
from alignlab.train.trainer import train
from tests.train._runs import PARITY, train_example, weights

REPO = Path(__file__).resolve().parents[2]
METHODS = ["grpo", "dr_grpo", "rloo", "reinforce_pp", "remax", "ppo"]


def test_the_core_online_methods_are_registered_as_family_online_rl():
    online = {s.name for s in all_specs() if s.family == "online_rl"}
    assert set(METHODS) <= online
    assert all(s.feedback == "rollouts" for s in all_specs() if s.name in METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_method_trains_from_its_example(name, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    result, lines = train_example(name, tmp_path / name)
    assert result.steps == 2
    last = lines[-1]
    for key in (
        "loss",
        "reward/mean",
        "reward/std",
        "completion_length",
        "eos_rate",
        "samples_per_s",
        "entropy",
    ):
        assert key in last and math.isfinite(float(last[key])), key
    initial, _ = tiny_model("llama")
    trained = weights(tmp_path / name / "model")
    moved = max(float((trained[k] - v).abs().max()) for k, v in initial.state_dict().items() if k in trained)
    assert moved > 0, f"{name}: the weights did not move"


def test_ppo_checkpoints_its_value_head(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "examples" / "ppo.yaml",
        [f"out={tmp_path / 'ppo'}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=2", "online.minibatches=1", "online.epochs_per_rollout=2",
         "online.sampling.max_new_tokens=4", PARITY],
    )  # fmt: skip
    train(config)
    saved = weights(tmp_path / "ppo" / "checkpoints" / "step-2")
    assert saved["value_head.linear.weight"].shape[-1] == 64  # the tiny model's hidden size
    assert "value_loss" in json.loads((tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines()[-1])
