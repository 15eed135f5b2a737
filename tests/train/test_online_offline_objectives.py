"""copg and a_lol on rollouts: the rollout records carry the judge's rewards, and one step's loss equals the
paper's formula computed here by hand from plain forward passes of the policy and the reference; each
example config trains end to end, and the same objectives still train offline without an `online:` section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab.config import load_config
from alignlab.train.step import train_step
from alignlab.train.trainer import train
from tests.train._online import setup_trainer

REPO = Path(__file__).resolve().parents[2]
JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


def script(i, j, params):
    """First ids 10 + i + j (reward 1 when even): every group of K >= 2 has both rewards."""
    return [10 + i + j, 20 + j, 2]


@torch.no_grad()
def seq_logp(model, prompt_ids, completion_ids):
    ids = torch.tensor([prompt_ids + completion_ids])
    start = len(prompt_ids) - 1
    logp = model(input_ids=ids).logits[0, start : start + len(completion_ids)].double().log_softmax(-1)
    return float(logp.gather(-1, torch.tensor(completion_ids)[:, None]).sum())


def perturb(model):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * p.abs().mean() * torch.randn(p.shape, generator=generator))


def test_copg_step_on_rollouts_by_hand(tmp_path, monkeypatch):
    beta = 0.5
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, f"objectives=[{{name: copg, beta: {beta}}}]", "online.prompts_per_rollout=3",
         "online.sampling.n=2", "online.sampling.max_new_tokens=3"],
        script,
        monkeypatch,
    )  # fmt: skip
    batch = trainer.source.next()
    policy, ref = trainer.context.unwrapped_policy(), trainer.context.reference.model
    perturb(policy)  # ρ = log π − log π_ref ≠ 0, so both terms count
    terms = []
    for group in batch.groups:
        r = [float(c[0] % 2 == 0) for c in group.completion_ids]
        lp = [seq_logp(policy, group.prompt_ids, c) for c in group.completion_ids]
        rho = [a - seq_logp(ref, group.prompt_ids, c) for a, c in zip(lp, group.completion_ids)]
        first, second = (0, 1) if r[0] >= r[1] else (1, 0)
        gap = r[first] - r[second]
        terms.append(-gap * (lp[first] - lp[second]) + 0.5 * beta * (rho[first] - rho[second]) ** 2)
    assert {round(t, 6) for t in terms} != {0.0}
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    assert metrics["loss"] == pytest.approx(np.mean(terms), abs=1e-5)
    # the live rollout's ratings and ranking travel in the checkpoint (a resumed step sees the same pairs)
    saved = trainer.source.state_dict()["rollout"]["records"]
    assert [r["scores"] for r in saved] == [rec.scores for rec in trainer.source.data.records]
    assert [r["ranking"] for r in saved] == [rec.ranking for rec in trainer.source.data.records]
    again = setup_trainer(
        tmp_path / "again", [JUDGE, f"objectives=[{{name: copg, beta: {beta}}}]"], script, monkeypatch
    )
    again.source.load_state_dict(trainer.source.state_dict())
    assert [r.scores for r in again.source.data.records] == [r.scores for r in trainer.source.data.records]


def test_a_lol_step_on_rollouts_by_hand(tmp_path, monkeypatch):
    clip = 0.2
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, f"objectives=[{{name: a_lol, clip: {clip}}}]", "online.prompts_per_rollout=2",
         "online.sampling.n=3", "online.sampling.max_new_tokens=3"],
        script,
        monkeypatch,
    )  # fmt: skip
    batch = trainer.source.next()
    policy, ref = trainer.context.unwrapped_policy(), trainer.context.reference.model
    perturb(policy)
    per_prompt = []
    for group in batch.groups:
        r = np.array([float(c[0] % 2 == 0) for c in group.completion_ids])
        advantage = np.maximum(r - r.mean(), 0.0)  # A⁺ = max(0, R − V(x)), V(x) = the group's mean reward
        lp = np.array([seq_logp(policy, group.prompt_ids, c) for c in group.completion_ids])
        lref = np.array([seq_logp(ref, group.prompt_ids, c) for c in group.completion_ids])
        ratio = np.clip(np.exp(lp - lref), 1 - clip, 1 + clip)
        per_prompt.append(np.mean(-advantage * ratio * lp))
    assert any(abs(x) > 1e-6 for x in per_prompt)
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    assert metrics["loss"] == pytest.approx(np.mean(per_prompt), abs=1e-5)


@pytest.mark.parametrize("name", ["copg", "a_lol"])
def test_example_trains_online(tmp_path, monkeypatch, name):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "examples" / f"{name}.yaml",
        [f"out={tmp_path / name}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=2", "online.sampling.max_new_tokens=4", JUDGE],
    )  # fmt: skip
    assert train(config).steps == 2


def test_copg_still_trains_offline(tmp_path):
    from alignlab.data.io import write_records
    from alignlab.data.records import Record

    data = write_records(
        [Record("p", ["a b", "c"], [0, 1], scores=[{"reward": 1.0}, {"reward": 0.0}])] * 4,
        tmp_path / "pairs.jsonl",
    )
    offline = load_config(
        None,
        [f"out={tmp_path / 'off'}", f"data.train={data}", "train.steps=1", "train.progress=false"],
        base={"objectives": [{"name": "copg"}]},
    )
    assert train(offline).steps == 1
