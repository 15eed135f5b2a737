"""The quickstart report's sentences, computed from numbers chosen here by hand."""

from __future__ import annotations

import math

from alignlab.recipes.quickstart_report import curve_comment, tradeoffs, verdict


def test_verdict_calls_an_effect_at_two_standard_errors():
    text, kind = verdict(65.6, 2.6, 256)  # z = 15.6 / 2.6 = 6
    assert kind == "worked"
    assert text == (
        "Alignment worked: DPO's answers beat SFT's in 65.6% ± 2.6 (standard error) of 256 held-out "
        "comparisons, against 50% for no change."
    )
    assert verdict(54.9, 2.5, 100)[1] == "unclear"  # z = 1.96
    assert verdict(55.0, 2.5, 100)[1] == "worked"  # z = 2
    assert verdict(44.0, 3.0, 100)[1] == "worse"  # z = -2
    assert verdict(50.0, 0.0, 16)[1] == "unclear"


def test_tradeoffs_name_what_was_gained_and_given_up():
    weights = {"correct": 1.0, "polite": 0.5, "safe": 1.0, "verbosity": -0.25}
    sft = {"correct": 0.27, "polite": 0.19, "safe": 0.83, "verbosity": 0.50}
    dpo = {"correct": 0.21, "polite": 0.50, "safe": 0.93, "verbosity": 0.24}
    text = tradeoffs(sft, dpo, weights)
    # contributions: polite +0.155, safe +0.100, verbosity +0.065, correct -0.060; total +0.26
    assert text.startswith("DPO changed the mean gold reward by +0.260, gained from polite 0.19 → 0.50")
    assert "safe 0.83 → 0.93 (weight +1: +0.100); verbosity 0.50 → 0.24 (weight -0.25: +0.065)" in text
    assert text.endswith(
        "The trade-off: correct 0.27 → 0.21 (weight +1: -0.060). DPO's gain comes from polite, safe, "
        "verbosity; correct got worse."
    )
    assert "trade-off" not in tradeoffs(sft, sft | {"polite": 0.3}, weights)


def test_curve_comment_finds_the_turn():
    ns = [1, 2, 4, 8, 16]
    kls = [math.log(n) - (n - 1) / n for n in ns]
    rising = {"n": ns, "kl": kls, "gold": [1.0, 1.1, 1.2, 1.3, 1.4], "proxy": [0.9, 1.1, 1.3, 1.4, 1.5]}
    assert "still rises up to n = 16 (1.00 → 1.40" in curve_comment(rising, "the RM")
    assert "not over-optimised yet" in curve_comment(rising, "the RM")
    turning = rising | {"gold": [1.0, 1.3, 1.5, 1.4, 1.2]}
    text = curve_comment(turning, "a proxy")
    assert text.startswith("With a proxy, gold reward peaks at n = 4 (1.50, KL 0.64 nats) and falls to 1.20")
    assert "over-optimisation" in text
