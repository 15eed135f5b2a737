"""The evaluation registry and its first metrics (winrate, ece, rewardbench) against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignlab.eval.registry import MetricError, all_metrics, get_metric, run_metric
from alignlab.eval.rm_metrics import expected_calibration_error
from alignlab.eval.uncertainty import Estimate, differs, verdict


def test_every_metric_has_a_paper_and_known_inputs():
    specs = all_metrics()
    names = {s.name for s in specs}
    assert names >= {  # every block of METHODS.md section K
        "winrate", "lc_winrate", "elo_bt", "varco_arena", "rewardbench", "ece", "overopt_curves",
        "daa_overopt_curves", "ches", "likelihood_displacement", "token_distribution_shift",
        "topk_overopt_indicators", "just_eval_instruct", "rating_ranking_consistency", "rlhf_diversity_metrics",
        "wimhf", "multimodel_separability",
    }  # fmt: skip
    for spec in specs:
        assert spec.paper and spec.summary, spec.name
        assert spec.describe()["inputs"] == spec.inputs


def test_unknown_metric_and_unknown_option_name_the_fix():
    with pytest.raises(MetricError, match="Did you mean: winrate"):
        get_metric("winrat")
    with pytest.raises(MetricError, match="does not take colour"):
        run_metric("winrate", verdicts=[1, 0], colour="red")
    with pytest.raises(MetricError, match="needs verdicts"):
        run_metric("winrate")


def test_winrate_alpaca_eval_hand_table():
    result = run_metric("winrate", verdicts=[2, 2, 1, 0], encoding="alpaca_eval")
    p = np.array([1, 1, 0, 0.5])
    assert result["win_rate"].value == pytest.approx(62.5)
    assert result["win_rate"].se == pytest.approx(100 * p.std(ddof=1) / 2)
    assert result.details["ties"] == 1
    assert result.details["verdict"] == "not distinguishable"  # [15.6, 100] contains 50
    assert (
        run_metric("winrate", verdicts=[1.0] * 30 + [0.0] * 5).details["verdict"]
        == "model better than baseline"
    )


def test_winrate_invalid_verdicts_are_reported_by_record():
    with pytest.raises(
        MetricError, match=r"2 of 5 verdicts invalid .*NaN: record 1.*outside \[0, 1\]: record 3"
    ):
        run_metric("winrate", verdicts=[1, float("nan"), 0, 1.5, 0.5])
    result = run_metric("winrate", verdicts=[1, float("nan"), 0, 1.5, 0.5], on_invalid="skip")
    assert result["win_rate"].value == pytest.approx(50.0) and result["win_rate"].n == 3
    assert "left out 2 of 5 verdicts" in result.notes[0]


def test_ece_hand_table():
    # bin [0.6, 0.7): 10 items of confidence 0.65, 6 right; bin [0.9, 1]: 10 items of confidence 0.95, all right.
    p = [0.65] * 6 + [0.35] * 4 + [0.95] * 10
    result = run_metric("ece", p_chosen=p, rounds=50)
    assert result["ece"].value == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    lo, hi = result["ece"].interval
    assert lo <= 0.05 <= hi


def test_ece_equals_the_both_orders_form_with_ten_bins():
    p = np.random.default_rng(0).uniform(0, 1, 300)
    assert run_metric("ece", p_chosen=p, rounds=10)["ece"].value == pytest.approx(
        expected_calibration_error(p)[0]
    )


def test_rewardbench_ties_are_wrong_and_an_oracle_scores_100():
    subsets = ["alpacaeval-easy", "mt-bench-hard", "donotanswer", "math-prm", "hep-go"]
    tie = run_metric("rewardbench", subsets=subsets, chosen_scores=[1.0] * 5, rejected_scores=[1.0] * 5)
    assert tie["score"].value == 0.0
    oracle = run_metric("rewardbench", subsets=subsets, chosen_scores=[1.0] * 5, rejected_scores=[0.0] * 5)
    for section in ("Chat", "Chat Hard", "Safety", "Reasoning"):
        assert oracle[f"section/{section}"].value == 100.0
    assert oracle["score"].value == 100.0


def test_rewardbench_weights_subsets_by_official_counts():
    # math-prm: 1 of 4 right; hep-go: 3 of 3 right. Official weights 984 (math up-weighted) and 164.
    subsets = ["math-prm"] * 4 + ["hep-go"] * 3 + ["alpacaeval-easy"] * 2
    chosen = [1, 0, 0, 0, 1, 1, 1, 1, 0]
    result = run_metric("rewardbench", subsets=subsets, chosen_scores=chosen, rejected_scores=[0.5] * 9)
    reasoning = (984 * 25 + 164 * 100) / (984 + 164)
    assert result["section/Reasoning"].value == pytest.approx(reasoning)
    se_math = 100 * math.sqrt(0.25 * 0.75 / 4)
    assert result["section/Reasoning"].se == pytest.approx(984 / 1148 * se_math)
    assert result["section/Chat"].value == pytest.approx(50.0)
    assert result["score"].value == pytest.approx((reasoning + 50) / 2)


def test_differs_needs_the_interval():
    a, b = Estimate(60, 2.0), Estimate(55, 2.0)
    assert differs(a, b) == (5 > 1.96 * math.hypot(2, 2))
    assert verdict(Estimate(3.0, 1.0)) == "higher" and verdict(Estimate(1.0, 1.0)) == "not distinguishable"


def test_judge_eval_reports_nan_rewards_by_pair():
    from alignlab.data.records import pair
    from alignlab.eval.judge_eval import evaluate_pairs
    from alignlab.judges.rules import RuleJudge

    records = [pair("q", "long answer", "short"), pair("q", "nan please", "x"), pair("q", "ab", "abcd")]
    judge = RuleJudge(lambda p, c: float("nan") if "nan" in c else float(len(c)))
    with pytest.raises(
        MetricError, match=r"1 of 3 pairs invalid \(NaN reward of the chosen completion: record 1\)"
    ):
        evaluate_pairs(judge, records)
    summary, metrics, notes = evaluate_pairs(judge, records, on_invalid="skip", rounds=20)
    assert summary.n == 2 and summary.accuracy == pytest.approx(0.5)
    assert metrics["accuracy"]["accuracy"].value == pytest.approx(0.5)
    assert "left out 1 of 3 pairs" in notes[0]
