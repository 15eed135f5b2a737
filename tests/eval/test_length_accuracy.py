"""``accuracy_by_length`` against a hand count, and ``eval judge`` asking a judge without scores in both orders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.records import pair
from alignlab.eval.length_accuracy import accuracy_by_length
from alignlab.judges.base import Judge


def test_accuracy_by_length_hand_table():
    # pairs 0-2: chosen shorter (3 < 5); 3-5: chosen longer; 6: equal lengths (left out of the split)
    p = [0.9, 0.2, 0.5, 0.7, 0.8, 0.1, 0.6]
    chosen = [3, 3, 3, 9, 9, 9, 4]
    rejected = [5, 5, 5, 2, 2, 2, 4]
    result = accuracy_by_length(p_chosen=p, chosen_lengths=chosen, rejected_lengths=rejected)
    short = np.array([1.0, 0.0, 0.5])  # p = ½ counts ½
    long = np.array([1.0, 1.0, 0.0])
    se_s = short.std(ddof=1) / math.sqrt(3)
    se_l = long.std(ddof=1) / math.sqrt(3)
    assert result["chosen_shorter"].value == pytest.approx(0.5) and result["chosen_shorter"].n == 3
    assert result["chosen_shorter"].se == pytest.approx(se_s)
    assert result["chosen_longer"].value == pytest.approx(2 / 3)
    assert result["balanced"].value == pytest.approx((0.5 + 2 / 3) / 2)
    assert result["balanced"].se == pytest.approx(0.5 * math.hypot(se_s, se_l))
    # "prefer the shorter": right on 0-2, wrong on 3-5, a tie on 6
    assert result["shorter_rule"].value == pytest.approx(3.5 / 7)
    assert result.details == {"n_chosen_shorter": 3, "n_chosen_longer": 3, "n_equal": 1}
    assert "1 of 7 pairs have answers of equal length" in result.notes[0]


def test_a_length_only_judge_is_at_chance_on_the_balanced_accuracy():
    rng = np.random.default_rng(0)
    lc, lr = rng.integers(1, 50, 200), rng.integers(1, 50, 200)
    p = np.where(lc < lr, 0.8, np.where(lc > lr, 0.2, 0.5))  # prefers the shorter answer, nothing else
    result = accuracy_by_length(p_chosen=p, chosen_lengths=lc, rejected_lengths=lr)
    assert result["chosen_shorter"].value == 1.0 and result["chosen_longer"].value == 0.0
    assert result["balanced"].value == 0.5
    plain = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0)).mean()
    assert result["shorter_rule"].value == pytest.approx(plain)


class FirstBiased(Judge):
    """P(a ≻ b | a shown first) = σ(u(a) − u(b) + 1.5): the word count as utility plus a pull to position A."""

    def prefer_many(self, prompts, a, b):
        u = lambda t: float(len(t.split()))  # noqa: E731
        return torch.sigmoid(torch.tensor([u(x) - u(y) + 1.5 for x, y in zip(a, b)], dtype=torch.float64))


def test_a_judge_without_scores_is_asked_in_both_orders():
    from alignlab.eval.judge_eval import evaluate_pairs

    # chosen first in every record, as preference files list them
    rows = [
        ("q", "one two three", "one"),
        ("q", "one", "one two"),
        ("q", "a b", "c d"),
        ("q", "x", "x y z w"),
    ]
    records = [pair(p, w, lose) for p, w, lose in rows]
    summary, metrics, notes = evaluate_pairs(FirstBiased(), records, rounds=20)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    want = []
    for _, w, lose in rows:
        d = len(w.split()) - len(lose.split())
        p_ab, p_ba = sig(d + 1.5), sig(-d + 1.5)  # chosen first; rejected first
        want.append(0.5 * (p_ab + 1 - p_ba))  # the symmetric average of the two orders
    correct = [1.0 if x > 0.5 else 0.5 if x == 0.5 else 0.0 for x in want]
    assert summary.accuracy == pytest.approx(np.mean(correct))
    assert np.mean(correct) == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    # asked in one order (chosen first) the bias would have made pairs 1 and 2 look right too
    one_order = [sig(len(w.split()) - len(lose.split()) + 1.5) for _, w, lose in rows]
    assert np.mean([x > 0.5 for x in one_order]) > summary.accuracy
    bias = np.mean([0.5 * (sig(d + 1.5) + sig(-d + 1.5)) for d in (2, -1, 0, -3)]) - 0.5
    assert f"position bias {bias:+.3f}" in notes[0]
    assert metrics["accuracy_by_length"]["chosen_longer"].value == pytest.approx(1.0)  # pair 0
