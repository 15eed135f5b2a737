"""p3o, drpo and trpa train end to end from their example configs (the real sampler, a judge from config)
and report the values the methods compute."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from alignlab.config import load_config
from alignlab.models.tiny import tiny_model
from alignlab.train.trainer import train
from tests.train._runs import PARITY, train_example, weights

REPO = Path(__file__).resolve().parents[2]
METRIC = {"p3o": "clip_fraction", "drpo": "correct_rate", "trpa": "prompts_with_pairs"}


@pytest.mark.parametrize("name", sorted(METRIC))
def test_method_trains_from_its_example(name, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    result, lines = train_example(name, tmp_path / name)
    assert result.steps == 2
    for line in lines:
        assert math.isfinite(float(line["loss"])) and METRIC[name] in line
    if name == "drpo":  # parity rewards are 0/1: the correct rate is the rollout's mean reward
        assert all(
            line["correct_rate"] == pytest.approx(line["reward/mean"])
            for line in lines
            if "reward/mean" in line
        )
    if name == "p3o":  # one update per rollout: every sequence ratio is exactly 1, nothing is clipped
        assert all(line["clip_fraction"] == 0.0 for line in lines)
    initial, _ = tiny_model("llama")
    trained = weights(tmp_path / name / "model")
    assert (
        max(float((trained[k] - v).abs().max()) for k, v in initial.state_dict().items() if k in trained) > 0
    )


def test_p3o_needs_two_samples_per_prompt(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "examples" / "p3o.yaml",
        [f"out={tmp_path / 'p3o'}", "train.steps=1", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=2", "online.sampling.n=3", "online.sampling.max_new_tokens=2", PARITY],
    )  # fmt: skip
    with pytest.raises(Exception, match="online.sampling.n: 2"):
        train(config)
