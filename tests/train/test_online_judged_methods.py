"""bleuberi (GRPO with BLEU against the prompt records' references) and rm_ensemble_conservative (PPO
against a normalised mean/WCO/UWO ensemble): judges built from config, and end to end from the examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab.config import load_config
from alignlab.judges.base import JudgeBatch
from alignlab.judges.build import build_judge
from alignlab.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
LENGTH = "tests.train._online:first_id_parity"


def test_bleuberi_judge_from_config_reads_the_records_references():
    judge = build_judge({"name": "bleuberi", "column": "references"}, "online.judge")
    refs = [["the cat sat on the mat", "a cat sat"], "it is four"]
    batch = JudgeBatch(["q1", "q2"], ["the cat sat on a mat", "it is four"], columns={"references": refs})
    got = judge.score_batch(batch)
    # unigrams: 'a' from the second reference makes 6/6; bigrams 3/5, trigrams 2/4, 4-grams 1/3; add-one
    # smoothing on each order; BP = 1 (6 tokens against the shortest reference's 3)
    hand = (7 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25
    assert float(got[0]) == pytest.approx(hand, rel=1e-6) and float(got[1]) == 1.0
    with pytest.raises(ValueError, match="no 'references' field"):
        judge.score_batch(JudgeBatch(["q"], ["x"], columns={"solution": ["4"]}))


def _member(tmp_path: Path, name: str, scale: float, shift: float) -> dict:
    (tmp_path / f"{name}.py").write_text(
        f"def f(completions, **_):\n    return [{scale} * len(c) + {shift} for c in completions]\n"
    )
    return {"name": "reward_function", "function": f"{tmp_path / name}.py:f"}


def test_conservative_ensemble_from_config_normalises_on_the_first_batch(tmp_path):
    spec = {
        "name": "rm_ensemble_conservative", "objective": "uwo", "uwo_coef": 1.0,
        "members": [_member(tmp_path, "a", 1.0, 0.0), _member(tmp_path, "b", 3.0, -2.0), _member(tmp_path, "c", -1.0, 5.0)],
    }  # fmt: skip
    judge = build_judge(spec, "online.judge")
    texts = ["a", "abcd", "ab", "abcdefg"]
    got = judge.score_batch(JudgeBatch(["p"] * 4, texts)).double().numpy()
    n = np.array([len(t) for t in texts], float)
    z = (n - n.mean()) / n.std(ddof=1)
    members = np.stack([z, z, -z])  # the third member ranks the other way after normalisation
    expected = members.mean(0) - members.var(0, ddof=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # later batches use the first batch's statistics
    again = judge.score_batch(JudgeBatch(["p"], ["abc"])).double().numpy()
    z3 = (3 - n.mean()) / n.std(ddof=1)
    m3 = np.array([z3, z3, -z3])
    assert float(again[0]) == pytest.approx(m3.mean() - m3.var(ddof=1), rel=1e-5)


@pytest.mark.parametrize("name", ["bleuberi", "rm_ensemble_conservative"])
def test_judged_method_trains_from_its_example(name, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    overrides = [f"out={tmp_path / name}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
                 "online.prompts_per_rollout=2", "online.sampling.max_new_tokens=4", "online.epochs_per_rollout=1",
                 "online.minibatches=1", "train.learning_rate=0.01"]  # fmt: skip
    if name == "rm_ensemble_conservative":  # members that need no world: two opposed length rewards
        members = [_member(tmp_path, "long", 1.0, 0.0), _member(tmp_path, "short", -1.0, 0.0)]
        overrides.append(f"online.judge.members={json.dumps(members)}")
    result = train(load_config(REPO / "examples" / f"{name}.yaml", overrides))
    assert result.steps == 2
    lines = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    rewards = [line["reward/mean"] for line in lines if "reward/mean" in line]
    assert rewards and all(math.isfinite(r) for r in rewards)
    if name == "bleuberi":
        assert all(0.0 <= r <= 1.0 for r in rewards)
    assert torch.isfinite(torch.tensor([float(line["loss"]) for line in lines])).all()
