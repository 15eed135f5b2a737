"""varco_arena's bracket arithmetic and ranking, and just_eval_instruct's score parser and averages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alignlab.eval.just_eval import just_eval_prompt, parse_scores
from alignlab.eval.registry import MetricError, run_metric


def _judge(strength):
    rng = np.random.default_rng(5)

    def prefer(prompt, a, b):  # outputs are "model:prompt"; the stronger model wins more often
        sa, sb = strength[a.split(":")[0]], strength[b.split(":")[0]]
        return float(rng.random() < 1 / (1 + 10 ** ((sb - sa) / 400)))

    return prefer


@pytest.mark.parametrize("m", [2, 4, 8, 5])
def test_each_prompt_costs_m_minus_one_matches(m):
    strength = {f"s{i}": 100.0 * i for i in range(m)}
    prompts = [f"p{j}" for j in range(6)]
    outputs = {name: [f"{name}:{p}" for p in prompts] for name in strength}
    res = run_metric("varco_arena", prompts=prompts, outputs=outputs, judge=_judge(strength), rounds=5)
    assert res.details["matches_per_prompt"] == [m - 1] * len(prompts)


def test_tournament_ranks_planted_strengths():
    strength = {"a": 0.0, "b": 200.0, "c": 400.0, "d": 600.0}
    prompts = [f"p{j}" for j in range(150)]
    outputs = {name: [f"{name}:{p}" for p in prompts] for name in strength}
    res = run_metric("varco_arena", prompts=prompts, outputs=outputs, judge=_judge(strength), rounds=50)
    assert res.details["ranking"] == ["d", "c", "b", "a"]


def test_just_eval_parser_and_means():
    good = {
        a: {"rationale": "ok", "score": s}
        for a, s in zip(("helpfulness", "clarity", "factuality", "depth", "engagement"), (5, 4, 3, 2, 1))
    }
    assert parse_scores("Here: " + json.dumps(good)) == {
        "helpfulness": 5,
        "clarity": 4,
        "factuality": 3,
        "depth": 2,
        "engagement": 1,
    }
    for broken, message in [
        ({**good, "depth": {"score": 6}}, "depth score 6 outside 1..5"),
        ({**good, "depth": {"score": 0}}, "outside 1..5"),
        ({**good, "clarity": {"score": 2.5}}, "not an integer"),
        ({k: v for k, v in good.items() if k != "clarity"}, "aspect 'clarity' missing"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_scores(json.dumps(broken))
    other = {a: {"score": 3} for a in good}
    replies = [json.dumps(good), json.dumps(other), "not json"]
    with pytest.raises(
        MetricError, match=r"1 of 3 judge replies invalid \(no JSON object in the reply: record 2\)"
    ):
        run_metric("just_eval_instruct", judge_outputs=replies)
    res = run_metric("just_eval_instruct", judge_outputs=replies, on_invalid="skip")
    assert res["helpfulness"].value == pytest.approx(4.0) and res["helpfulness"].se == pytest.approx(
        np.std([5, 3], ddof=1) / np.sqrt(2)
    )
    assert res["mean"].value == pytest.approx(3.0)
    assert "helpfulness" in just_eval_prompt("Say hi", "hi")
