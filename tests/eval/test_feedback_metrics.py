"""rating_ranking_consistency, multimodel_separability, rlhf_diversity_metrics and wimhf on data whose answer is
known (identical protocols, identical distributions, identical samples, a planted length feature)."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.eval.feedback_metrics import ead
from alignlab.eval.registry import MetricError, run_metric


def test_consistency_identical_protocols_and_hand_table():
    ra, rb = [5, 3, 4, 2], [2, 3, 1, 6]
    same = ["a", "tie", "a", "b"]  # the ranking the ratings imply
    res = run_metric("rating_ranking_consistency", rating_a=ra, rating_b=rb, ranked=same)
    assert res["inconsistency_with_ties"].value == 0.0 and res["inconsistency_strict"].value == 0.0
    # Disagree on row 0 (b instead of a) and row 1 (a instead of a rating tie): 2/4 with ties, 1/3 strict.
    res = run_metric("rating_ranking_consistency", rating_a=ra, rating_b=rb, ranked=["b", "a", "a", "b"])
    assert res["inconsistency_with_ties"].value == pytest.approx(0.5)
    assert res["inconsistency_strict"].value == pytest.approx(1 / 3)
    with pytest.raises(MetricError, match="record 2"):
        run_metric("rating_ranking_consistency", rating_a=ra, rating_b=rb, ranked=["a", "b", "maybe", "a"])


def test_separability_chance_when_identical_and_high_when_planted():
    rng = np.random.default_rng(0)
    c, r = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    res = run_metric("multimodel_separability", chosen_embeddings=c, rejected_embeddings=r)
    lo, hi = res["probe_accuracy"].interval
    assert lo <= 50 <= hi
    c[:, 3] += 2.0  # a superficial direction only chosen responses have
    res = run_metric("multimodel_separability", chosen_embeddings=c, rejected_embeddings=r)
    assert res["probe_accuracy"].value > 80


def test_diversity_identical_samples_and_ead_by_hand():
    texts = ["a b c", "a b d"]
    # unigrams: 6 total, distinct {a, b, c, d} = 4, V = 4: EAD = 4 / (4·(1 − (3/4)^6))
    assert ead(texts, 1, 4) == pytest.approx(4 / (4 * (1 - 0.75**6)))
    emb = np.ones((3, 3, 5))
    same = [["x y z"] * 3, ["p q r"] * 3, ["u v w"] * 3]
    res = run_metric("rlhf_diversity_metrics", samples=same, embeddings=emb)
    assert res["per_input_cosine_diversity"].value == pytest.approx(0.0, abs=1e-12)
    varied = [["x y z", "p q", "r s t u"], ["a", "b c", "d e f"], ["g h", "i", "j k"]]
    assert (
        run_metric("rlhf_diversity_metrics", samples=varied)["per_input_ead"].value
        > res["per_input_ead"].value
    )


def test_wimhf_recovers_a_planted_length_feature():
    # Responses are sparse mixtures of 10 topic directions plus a length direction; annotators prefer the longer.
    rng = np.random.default_rng(0)
    n, d, topics = 300, 24, 10
    dirs = rng.normal(size=(topics + 1, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)

    def responses():
        z = (rng.random((n, topics)) < 0.15) * rng.exponential(1.0, (n, topics))
        length = rng.exponential(1.0, n)
        return z @ dirs[:topics] + 2 * length[:, None] * dirs[topics] + 0.05 * rng.normal(size=(n, d)), length

    (a, la), (b, lb) = responses(), responses()
    longer_b = la < lb
    c, r = np.where(longer_b[:, None], b, a), np.where(longer_b[:, None], a, b)
    attributes = {"length": np.abs(la - lb), "noise": rng.normal(size=n)}
    res = run_metric("wimhf", chosen_embeddings=c, rejected_embeddings=r, attributes=attributes)
    top = res.details["top_features"][0]
    assert abs(top["correlation"]["length"]) > 0.8 and abs(top["correlation"]["noise"]) < 0.2
    assert res["probe_accuracy"].value > 85
