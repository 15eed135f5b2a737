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


def test_varco_spearman_against_elo_bt_on_the_same_simulated_battles():
    from scipy.stats import spearmanr

    strength = {"a": 0.0, "b": 150.0, "c": 300.0, "d": 450.0, "e": 600.0}
    prompts = [f"p{j}" for j in range(60)]
    outputs = {name: [f"{name}:{p}" for p in prompts] for name in strength}
    judge = _judge(strength)
    # The reference: elo_bt on round-robin battles of the same systems under the same simulated judge.
    rr = [(x, y, p) for p in prompts for i, x in enumerate(strength) for y in list(strength)[i + 1 :]]
    won = [judge(p, f"{x}:{p}", f"{y}:{p}") for x, y, p in rr]
    elo = run_metric(
        "elo_bt", model_a=[x for x, _, _ in rr], model_b=[y for _, y, _ in rr],
        winner=["model_a" if v else "model_b" for v in won], rounds=20,
    )  # fmt: skip
    reference = {m: elo[f"rating/{m}"].value for m in strength}
    res = run_metric(
        "varco_arena", prompts=prompts, outputs=outputs, judge=judge, rounds=60, reference=reference
    )
    ours = [res[f"rating/{m}"].value for m in strength]
    expected = spearmanr(ours, [reference[m] for m in strength]).statistic
    rho = res["spearman"]
    assert rho.value == pytest.approx(expected)
    assert rho.ci[0] <= rho.value <= rho.ci[1] <= 1.0
    assert spearmanr(ours, list(strength.values())).statistic > 0.8  # planted order recovered
    assert rho.ci[0] > 0  # the two rankings agree beyond chance
    # A reversed reference gives −ρ; ties in the reference use average ranks, as scipy does.
    rev = run_metric(
        "varco_arena", prompts=prompts, outputs=outputs, judge=_judge(strength), rounds=5,
        reference={m: -v for m, v in strength.items()},
    )  # fmt: skip
    rev_ours = [rev[f"rating/{m}"].value for m in strength]
    assert rev["spearman"].value == pytest.approx(
        spearmanr(rev_ours, [-v for v in strength.values()]).statistic
    )
    tied = {"a": 1.0, "b": 1.0, "c": 2.0, "d": 3.0, "e": 3.0}
    tie = run_metric("varco_arena", prompts=prompts, outputs=outputs, judge=judge, rounds=5, reference=tied)
    tie_ours = [tie[f"rating/{m}"].value for m in strength]
    assert tie["spearman"].value == pytest.approx(spearmanr(tie_ours, list(tied.values())).statistic)
    with pytest.raises(MetricError, match="no rating for c, d, e"):
        run_metric("varco_arena", prompts=prompts, outputs=outputs, judge=judge, reference={"a": 1, "b": 2})
