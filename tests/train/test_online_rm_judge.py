"""The online judge is a reward model, or an ensemble of reward models, built from a judge spec: tiny
reward models are built and saved here, the rollout source asks them for its rewards, and those rewards
equal each reward model's score computed by hand (one plain forward pass of its backbone, its linear head
on the last token's hidden state), combined by the ensemble's rule (mean; worst case = min)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab.config import load_config
from alignlab.models.reward import RewardModel
from alignlab.models.tiny import tiny_tokenizer
from alignlab.train.trainer import train
from tests.train._online import setup_trainer

REPO = Path(__file__).resolve().parents[2]


def save_rm(path: Path, seed: int) -> RewardModel:
    model = RewardModel.from_base("tiny:llama", seed=seed)
    model.save_pretrained(path / "model")
    tiny_tokenizer().save_pretrained(path / "model")
    return model


@torch.no_grad()
def by_hand(model: RewardModel, prompt: str, completion: str) -> float:
    """r(x, y) = w·h_last + b, h_last the backbone's last hidden state over prompt + completion + EOS."""
    tok = tiny_tokenizer()
    ids = (
        tok(prompt, add_special_tokens=True)["input_ids"]
        + tok(completion, add_special_tokens=False)["input_ids"]
    )
    h = model.backbone(input_ids=torch.tensor([ids + [tok.eos_token_id]])).last_hidden_state[0, -1].double()
    w, b = model.reward_head.weight.detach().double(), model.reward_head.bias.detach().double()
    return float(h @ w[0] + b[0])


@pytest.mark.parametrize("mode", ["single", "mean", "min"])
def test_rollout_rewards_come_from_the_reward_models(tmp_path, mode):
    a, b = save_rm(tmp_path / "rm-a", 3), save_rm(tmp_path / "rm-b", 4)
    if mode == "single":
        judge = f"{{name: reward_model, path: {tmp_path / 'rm-a'}}}"
    else:
        members = f"[{{name: reward_model, path: {tmp_path / 'rm-a'}}}, {{name: reward_model, path: {tmp_path / 'rm-b'}}}]"
        judge = f"{{name: rm_ensemble, mode: {mode}, members: {members}}}"
    trainer = setup_trainer(
        tmp_path,
        [f"online.judge={judge}", "online.prompts_per_rollout=2", "online.sampling.n=2",
         "online.sampling.max_new_tokens=6"],
    )  # fmt: skip
    trainer.source.next()
    data = trainer.source.data
    got, want = [], []
    for record, group in zip(data.records, data.groups):
        got += group.rollout["rewards"].tolist()
        for text in record.completions:
            scores = [by_hand(a, record.prompt, text), by_hand(b, record.prompt, text)]
            want.append(scores[0] if mode == "single" else np.mean(scores) if mode == "mean" else min(scores))
    assert len(got) == 4 and np.allclose(got, want, atol=1e-5)
    assert len(set(np.round(want, 6))) > 1  # the rewards differ between completions (a real signal)


def test_grpo_trains_with_a_reward_model_ensemble_from_its_example(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    save_rm(tmp_path / "rm-a", 3)
    save_rm(tmp_path / "rm-b", 4)
    members = f"[{{name: reward_model, path: {tmp_path / 'rm-a'}}}, {{name: reward_model, path: {tmp_path / 'rm-b'}}}]"
    out = tmp_path / "run"
    config = load_config(
        REPO / "examples" / "grpo.yaml",
        [f"out={out}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=2", "online.sampling.max_new_tokens=4",
         f"online.judge={{name: rm_ensemble, mode: min, members: {members}}}"],
    )  # fmt: skip
    assert train(config).steps == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rewards = [r["reward/mean"] for r in rows if "reward/mean" in r]
    assert rewards and all(np.isfinite(rewards)) and any(r != 0 for r in rewards)
