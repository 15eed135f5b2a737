"""Symmetric AI preferences, agreement, jury votes, reward-augmented relabelling and routing."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from alignlab.data.label.jury import jury_verdicts
from alignlab.data.label.relabel import reward_augmented_relabel
from alignlab.data.label.route import route, uncertainty_gain
from alignlab.data.label.symmetric import agreement, label_pairs, position_bias, symmetric_preference
from alignlab.data.records import Record, pair


def test_symmetric_preference_of_both_orders_sums_to_one_exactly():
    r = random.Random(0)
    for _ in range(100):
        p_ab, p_ba = r.random(), r.random()
        forward = symmetric_preference([p_ab], [p_ba])[0]
        backward = symmetric_preference([p_ba], [p_ab])[0]  # the same pair asked with b as "a"
        assert forward + backward == 1.0


def test_symmetric_averaging_removes_a_known_position_bias():
    """A judge with true P(a > b) = σ(d) that adds a bias β to whichever is shown first: averaging both
    orders gives back σ-shaped values symmetric in the order, and the measured bias matches β's effect."""
    sigma = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    d = np.linspace(-2, 2, 9)
    beta = 0.8
    p_ab = [sigma(x + beta) for x in d]
    p_ba = [sigma(-x + beta) for x in d]
    p = symmetric_preference(p_ab, p_ba)
    expected = [0.5 * (sigma(x + beta) + 1 - sigma(-x + beta)) for x in d]
    assert np.allclose(p, expected)
    assert np.allclose(p[::-1], 1 - p)  # antisymmetric in d: no order preference left
    assert p[4] == pytest.approx(0.5)
    bias = position_bias(p_ab, p_ba)
    assert bias == pytest.approx(np.mean([0.5 * (sigma(x + beta) + sigma(-x + beta)) for x in d]) - 0.5)
    assert bias > 0.1


def test_label_pairs_and_agreement_with_existing_labels():
    records = [pair(f"p{i}", "a", "b") for i in range(4)]
    p_ab, p_ba = [0.9, 0.2, 0.7, 0.5], [0.2, 0.9, 0.6, 0.5]  # symmetric p: 0.85, 0.15, 0.55, 0.5
    labelled = label_pairs(records, p_ab, p_ba)
    assert [r.ranking for r in labelled] == [[0, 1], [1, 0], [0, 1], [0, 0]]
    assert labelled[0].extras["ai_preference"] == pytest.approx(0.85)
    assert labelled[1].meta["previous_ranking"] == [0, 1]
    stats = agreement(symmetric_preference(p_ab, p_ba), [True] * 4, p_ab, p_ba)
    # the tie (0.5) is left out: 3 compared pairs, 2 agree; kappa by hand: pa = 2/3 (AI says first), ph = 1
    assert (stats.pairs, stats.agree) == (3, 2)
    expected = (2 / 3 - (2 / 3 * 1 + 1 / 3 * 0)) / (1 - 2 / 3)
    assert stats.cohen_kappa == pytest.approx(expected)
    assert stats.order_flips == 1  # pair 2: 0.7 says a first, 1 - 0.6 = 0.4 says b


def test_jury_unanimous_votes_never_escalated():
    verdicts = jury_verdicts([["safe"] * 3, ["unsafe"] * 3, ["safe", "unsafe", "safe"], ["a", "b"]])
    assert [(v.label, v.escalate) for v in verdicts] == [
        ("safe", False),
        ("unsafe", False),
        ("safe", True),
        (None, True),
    ]
    relaxed = jury_verdicts([["safe", "unsafe", "safe"]], min_agreement=0.6)
    assert relaxed[0].escalate is False and relaxed[0].share == pytest.approx(2 / 3)


def test_reward_augmented_relabel_doubles_and_conditions_on_the_chosen_score():
    records = [
        Record(
            prompt=f"q{i}",
            completions=["good", "bad"],
            ranking=[0, 1],
            scores=[{"r": 8.0 + i}, {"r": 3.0}],
            id=f"x{i}",
        )
        for i in range(3)
    ]
    tie = Record(prompt="t", completions=["a", "b"], ranking=[0, 1], scores=[{"r": 5.0}, {"r": 5.0}])
    out, dropped = reward_augmented_relabel([*records, tie, pair("p", "a", "b")], aspect="r")
    assert len(out) == 2 * len(records)
    for r in out:
        # the chosen completion is the one whose score the prompt asks for
        assert r.scores[0]["r"] == r.meta["conditioned_score"]
        assert f"score {r.meta['conditioned_score']:g} (out of 10)" in r.prompt[0]["content"]
    assert dropped == {"pair with equal scores": 1, "not a scored pair (K = 2 with ranking and scores)": 1}


def test_route_spends_exactly_the_budget():
    gain = uncertainty_gain([0.9, 0.5, 0.55, 0.1, 0.7])
    assert route(gain, 0).human == [] and route(gain, 0).ai == [0, 1, 2, 3, 4]
    assert sorted(route(gain, 5).human) == [0, 1, 2, 3, 4] and route(gain, 5).ai == []
    two = route(gain, 2)
    assert two.human == [1, 2] and two.ai == [0, 3, 4]  # the two closest to 0.5
    assert len(route(gain, 99).human) == 5
    with pytest.raises(ValueError, match="whole number"):
        route(gain, -1)
