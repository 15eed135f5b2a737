"""Reward-model metrics against hand computations and a numpy ECE written here.

Binning used by the reference ECE below: 10 equal-width bins, bin b = [b/10, (b+1)/10) and the last bin
closed at 1, so p = 0.5 falls in bin 5 and p = 1 in bin 9. Every pair is counted in both orders (the
prediction p with outcome 1 and 1 − p with outcome 0), as the module documents.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from alignlab.data.records import Record, pair
from alignlab.eval.rm_metrics import (
    evaluate_judge,
    expected_calibration_error,
    pairs_of,
    plot_reliability,
    summarize,
)
from alignlab.judges.base import Judge
from alignlab.judges.rules import RuleJudge


def numpy_ece(p: np.ndarray, n_bins: int = 10) -> tuple[float, dict[int, tuple[int, float, float]]]:
    preds = np.concatenate([p, 1 - p])
    outcomes = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    index = np.minimum(np.floor(preds * n_bins).astype(int), n_bins - 1)
    ece, bins = 0.0, {}
    for b in range(n_bins):
        sel = index == b
        if sel.sum():
            conf, freq = preds[sel].mean(), outcomes[sel].mean()
            ece += sel.sum() / len(preds) * abs(freq - conf)
            bins[b] = (int(sel.sum()), conf, freq)
    return ece, bins


def test_accuracy_counts_ties_as_half():
    result = summarize(np.array([0.9, 0.5, 0.2, 0.7, 0.5]))
    assert result.accuracy == pytest.approx((1 + 0.5 + 0 + 1 + 0.5) / 5)
    assert result.n == 5
    # Through a judge: rewards are the completion lengths, so equal lengths are ties.
    records = [
        pair("q", "long answer", "short"),  # 11 vs 5: right
        pair("q", "abc", "xyz"),  # tie
        pair("q", "no", "a longer one"),  # wrong
        pair("q", "four", "five"),  # tie
    ]
    result = evaluate_judge(RuleJudge(lambda p, c: float(len(c))), records)
    assert result.accuracy == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert result.p_chosen[1] == 0.5 and result.p_chosen[3] == 0.5


def test_rewardbench_section_weighting_by_hand():
    # Subset accuracies and sizes: A 2/2 (n=2), B 3/6 (n=6), C 1/4 (n=4).
    correct = {"A": [1, 1], "B": [1, 1, 1, 0, 0, 0], "C": [1, 0, 0, 0]}
    p, names = [], []
    for name, values in correct.items():
        p += [0.8 if v else 0.3 for v in values]
        names += [name] * len(values)
    sections = {"chat": ["A", "B"], "safety": ["C", "not-in-data"]}
    result = summarize(np.array(p), names, sections)
    assert result.subsets == {
        "A": {"accuracy": 1.0, "n": 2},
        "B": {"accuracy": 0.5, "n": 6},
        "C": {"accuracy": 0.25, "n": 4},
    }
    chat = (2 * 1.0 + 6 * 0.5) / 8  # weighted by example counts, not the mean of 1.0 and 0.5
    assert result.sections["chat"] == pytest.approx(0.625) == pytest.approx(chat)
    assert result.sections["safety"] == pytest.approx(0.25)
    assert result.score == pytest.approx((0.625 + 0.25) / 2)
    assert set(result.sections) == {"chat", "safety"}
    assert result.accuracy == pytest.approx(6 / 12)
    # A section may be called "score": the headline number has its own field, so nothing collides.
    named = summarize(np.array(p), names, {"score": ["A"], "other": ["C"]})
    assert named.sections == pytest.approx({"score": 1.0, "other": 0.25})
    assert named.score == pytest.approx((1.0 + 0.25) / 2)


def test_overall_score_is_rewardbench_leaderboard_score_by_hand():
    # RewardBench's leaderboard number (allenai/reward-bench 05a9005, analysis/get_benchmark_results.py
    # get_average_over_rewardbench): sections weighted by the official EXAMPLE_COUNTS (rewardbench/constants.py,
    # transcribed here), then weight 2 per section and 1 for the mean of the prior sets. Scalar rewards count
    # strictly: a tie is wrong (rewardbench.py main), unlike the ½ of the plain accuracy.
    rows = {  # subset: (chosen, rejected) rewards
        "alpacaeval-easy": [(1, 0), (1, 0), (0, 1), (0, 0)],  # 2/4 (the tie counts 0)
        "mt-bench-med": [(1, 0), (1, 0)],  # 2/2
        "math-prm": [(1, 0), (0, 1)],  # 1/2
        "hep-go": [(0, 1), (0, 1), (0, 1), (1, 0)],  # 1/4
        "shp": [(1, 0)],  # 1/1
        "summarize": [(0, 1), (1, 0)],  # 1/2
    }
    subsets = [name for name, pairs in rows.items() for _ in pairs]
    cw = np.array([c for pairs in rows.values() for c, _ in pairs], dtype=float)
    cl = np.array([r for pairs in rows.values() for _, r in pairs], dtype=float)
    p = np.where(cw == cl, 0.5, 1 / (1 + np.exp(cl - cw)))
    mapping = {"Chat": ["alpacaeval-easy", "mt-bench-med"], "Reasoning": ["math-prm", "hep-go"]}
    result = summarize(p, subsets, mapping, cw, cl)
    chat = (100 * 0.5 + 40 * 1.0) / (100 + 40)  # alpacaeval-easy 100, mt-bench-med 40
    reasoning = (984 * 0.5 + 164 * 0.25) / (984 + 164)  # math-prm 984, hep-go 164
    prior = (1.0 + 0.5) / 2
    assert result.sections == pytest.approx({"Chat": chat, "Reasoning": reasoning})
    assert result.score == pytest.approx((2 * chat + 2 * reasoning + 1 * prior) / 5)
    assert result.subsets["alpacaeval-easy"]["accuracy"] == pytest.approx(2.5 / 4)  # plain accuracy: tie ½


def test_rm_eval_reports_rewardbench_sections_without_a_sections_file():
    from alignlab.eval.judge_eval import evaluate_pairs

    records = [
        pair("q", "aa", "b", meta={"subset": "alpacaeval-easy"}),
        pair("q", "c", "dd", meta={"subset": "hep-go"}),
        pair("q", "eee", "f", meta={"subset": "hep-go"}),
    ]
    summary, metrics, _ = evaluate_pairs(RuleJudge(lambda p, c: float(len(c))), records, rounds=20)
    assert summary.sections == pytest.approx({"Chat": 1.0, "Reasoning": 0.5})
    assert summary.score == pytest.approx(0.75) == pytest.approx(metrics["rewardbench"]["score"].value / 100)


def test_subsets_come_from_meta_subset_or_source():
    records = [
        pair("q", "aa", "b", meta={"subset": "x"}),
        pair("q", "a", "bb", meta={"subset": "x"}),
        pair("q", "ccc", "c", source="y"),
        pair("q", "d", "dd"),
    ]
    result = evaluate_judge(RuleJudge(lambda p, c: float(len(c))), records, {"both": ["x", "y"]})
    assert result.subsets == {
        "all": {"accuracy": 0.0, "n": 1},
        "x": {"accuracy": 0.5, "n": 2},
        "y": {"accuracy": 1.0, "n": 1},
    }
    assert result.sections["both"] == pytest.approx((2 * 0.5 + 1 * 1.0) / 3)


def test_ece_matches_numpy_reference():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0, 1, 200), [0.5, 0.5, 1.0, 0.0]])
    want, want_bins = numpy_ece(p)
    got, bins = expected_calibration_error(p)
    assert got == pytest.approx(want, abs=1e-12)
    assert len(bins) == len(want_bins)
    for b in bins:
        index = int(round(b["low"] * 10))
        n, conf, freq = want_bins[index]
        assert (b["n"], b["mean_prediction"], b["frequency"]) == (n, pytest.approx(conf), pytest.approx(freq))
    # Closed forms: always 1/2 is perfectly calibrated; always certain is penalised by its error rate.
    assert expected_calibration_error(np.full(7, 0.5))[0] == 0.0
    certain = np.array([1.0, 1.0, 1.0, 0.0])  # 3 right, 1 wrong, all with certainty
    assert expected_calibration_error(certain)[0] == pytest.approx(0.25)
    five_bins, _ = expected_calibration_error(p, n_bins=5)
    assert five_bins == pytest.approx(numpy_ece(p, 5)[0], abs=1e-12)


def test_reward_distribution_summary():
    cw = np.array([1.0, 2.5, -0.5, 3.0])
    cl = np.array([0.0, 3.0, -1.5, 1.0])
    p = 1 / (1 + np.exp(-(cw - cl)))
    result = summarize(p, chosen_rewards=cw, rejected_rewards=cl)
    margin = cw - cl  # [1, -0.5, 1, 2]
    assert result.rewards["chosen"] == pytest.approx(
        {"mean": 1.5, "std": np.sqrt(np.mean((cw - 1.5) ** 2)), "min": -0.5, "max": 3.0}
    )
    assert result.rewards["rejected"] == pytest.approx(
        {"mean": 0.625, "std": np.sqrt(np.mean((cl - 0.625) ** 2)), "min": -1.5, "max": 3.0}
    )
    assert result.rewards["margin"] == pytest.approx(
        {"mean": 0.875, "std": np.sqrt(np.mean((margin - 0.875) ** 2)), "min": -0.5, "max": 2.0}
    )
    assert result.accuracy == pytest.approx(0.75)
    out = result.to_dict()
    assert out["reward_distribution"]["margin"]["mean"] == pytest.approx(0.875)


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def test_reliability_diagram_is_a_valid_png(tmp_path):
    import matplotlib.image

    cw, cl = np.array([1.0, 0.2, 2.0]), np.array([0.0, 0.4, -1.0])
    result = summarize(1 / (1 + np.exp(-(cw - cl))), chosen_rewards=cw, rejected_rewards=cl)
    path = plot_reliability(result, tmp_path / "sub" / "rm.png")
    assert _png_size(path) == (1000, 400)  # two panels of 5x4 inches at 100 dpi
    assert matplotlib.image.imread(path).shape[:2] == (400, 1000)
    only_calibration = plot_reliability(summarize(np.array([0.7, 0.4])), tmp_path / "one.png")
    assert _png_size(only_calibration) == (500, 400)


def test_pairs_of_and_preference_judges():
    records = [
        Record("q", ["a", "b", "c"], ranking=[0, 1, 2]),
        Record("r", ["x", "y", "z"], ranking=[1, 0, 0]),  # y and z tie: no pair between them
        Record("s", ["only"]),
    ]
    prompts, chosen, rejected, _ = pairs_of(records)
    assert sorted(zip(prompts, chosen, rejected)) == [
        ("q", "a", "b"),
        ("q", "a", "c"),
        ("q", "b", "c"),
        ("r", "y", "x"),
        ("r", "z", "x"),
    ]
    with pytest.raises(ValueError, match="no ranked pairs"):
        pairs_of([Record("s", ["only"]), Record("t", ["a", "b"], ranking=[0, 0])])

    fixed = {("a", "b"): 0.9, ("a", "c"): 0.5, ("b", "c"): 0.2, ("y", "x"): 0.6, ("z", "x"): 0.6}

    class Fixed(Judge):  # a preference model with no scores (and no position bias): asked in both orders
        def prefer_many(self, prompts, a, b):
            p = [fixed[(x, y)] if (x, y) in fixed else 1 - fixed[(y, x)] for x, y in zip(a, b)]
            return torch.tensor(p, dtype=torch.float64)

    result = evaluate_judge(Fixed(), records)
    assert result.accuracy == pytest.approx((1 + 0.5 + 0 + 1 + 1) / 5)
    assert result.rewards == {} and result.chosen_rewards is None
    assert result.ece == pytest.approx(numpy_ece(np.array([0.9, 0.5, 0.2, 0.6, 0.6]))[0])
