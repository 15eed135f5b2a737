"""Conversions checked against pairs, ranks and labels worked out by hand."""

from __future__ import annotations

import pytest

from alignlab.data.conversions import (
    CONVERSIONS,
    convert,
    pairs_to_labels,
    parse_spec,
    ranking_to_pairs,
    ratings_to_labels,
    ratings_to_pairs,
    ratings_to_ranking,
)
from alignlab.data.records import Record

RATED = Record(
    prompt="p",
    completions=["c0", "c1", "c2", "c3"],
    scores=[{"q": 3}, {"q": 5}, {"q": 5}, {"q": 1}],
    id="r",
    meta={"other": [9, 9, 9, 9]},
    roles=["", "", "", "aux"],
    context_prefixes=["x0", None, "x2", None],
    extras={"old_reward": [0.5, 1.5, 2.5, 3.5], "prob_desirable": 0.8},
)


def test_all_pairs_by_hand():
    # best first: c1 (5), c2 (5), c0 (3), c3 (1). Pairs: c1~c2 tie; c1>c0 (2); c1>c3 (4); c2>c0 (2);
    # c2>c3 (4); c0>c3 (2).
    out = ratings_to_pairs([RATED], strategy="all")
    assert [(r.completions, r.meta["margin"]) for r in out] == [
        (["c1", "c0"], 2),
        (["c1", "c3"], 4),
        (["c2", "c0"], 2),
        (["c2", "c3"], 4),
        (["c0", "c3"], 2),
    ]
    assert all(r.ranking == [0, 1] for r in out) and out.dropped == {"pair tied": 1}
    strict = ratings_to_pairs([RATED], strategy="all", min_margin=3)
    assert [r.completions for r in strict] == [["c1", "c3"], ["c2", "c3"]]
    assert strict.dropped == {"pair tied": 1, "pair with margin below min_margin": 3}


def test_per_completion_fields_follow():
    out = ratings_to_pairs([RATED], strategy="best_vs_worst")
    (pair,) = out.records
    assert pair.completions == ["c1", "c3"] and pair.id == "r:1>3"
    assert pair.roles == ["", "aux"] and pair.context_prefixes == [None, None]
    assert pair.extras == {"old_reward": [1.5, 3.5], "prob_desirable": 0.8}  # lists follow, numbers stay
    assert pair.meta["other"] == [9, 9, 9, 9]  # not a per-completion field: left alone
    assert pair.meta["aspect"] == "q" and pair.scores is None


def test_best_vs_random_picks_only_lower_ratings():
    rejected = {
        ratings_to_pairs([RATED], strategy="best_vs_random", seed=s).records[0].completions[1]
        for s in range(40)
    }
    chosen = {
        ratings_to_pairs([RATED], strategy="best_vs_random", seed=s).records[0].completions[0]
        for s in range(40)
    }
    assert chosen == {"c1"} and rejected == {"c0", "c3"}
    out = ratings_to_pairs([RATED], strategy="best_vs_random", min_margin=3)
    assert out.records[0].completions == ["c1", "c3"]


def test_ties_margins_and_missing_ratings_are_counted():
    tied = Record(prompt="p", completions=["a", "b"], scores=[{"q": 2}, {"q": 2}])
    close = Record(prompt="p", completions=["a", "b"], scores=[{"q": 2}, {"q": 1.5}])
    partial = Record(prompt="p", completions=["a", "b", "c"], scores=[{"q": 2}, {}, {"z": 1}])
    plain = Record(prompt="p", completions=["a", "b"], ranking=[0, 1])
    out = ratings_to_pairs([tied, close, partial, plain], aspect="q", strategy="best_vs_worst", min_margin=1)
    assert out.records == []
    assert out.dropped == {
        "record with all ratings tied": 1,
        "record with margin below min_margin": 1,
        "completion without rating 'q'": 2,
        "record with fewer than 2 rated completions": 1,
        "record without ratings": 1,
    }
    assert "left out" in out.summary()


def test_aspects():
    record = Record(prompt="p", completions=["a", "b"], scores=[{"x": 1, "y": 3}, {"x": 4, "y": 4, "z": 9}])
    (pair,) = ratings_to_pairs([record], aspect="mean").records  # shared names x, y: means 2 and 4
    assert pair.completions == ["b", "a"] and pair.meta["margin"] == 2
    (pair,) = ratings_to_pairs([record], aspect="y").records
    assert pair.completions == ["b", "a"] and pair.meta["margin"] == 1
    with pytest.raises(ValueError, match="aspect"):
        ratings_to_pairs([record])


def test_ratings_to_ranking_dense_ties():
    out = ratings_to_ranking([RATED])
    assert out.records[0].ranking == [1, 0, 0, 2] and out.records[0].scores is None


def test_ranking_to_pairs():
    record = Record(prompt="p", completions=["a", "b", "c"], ranking=[1, 0, 1], id="k")
    out = ranking_to_pairs([record])
    # order by rank: b (0), a (1), c (1): b>a, b>c, a~c tied
    assert [r.completions for r in out] == [["b", "a"], ["b", "c"]]
    assert out.dropped == {"pair tied": 1}
    swapped = Record(prompt="p", completions=["lose", "win"], ranking=[1, 0], id="s")
    (pair,) = ranking_to_pairs([swapped]).records
    assert (pair.completions, pair.ranking, pair.id) == (["win", "lose"], [0, 1], "s")


def test_ranking_to_pairs_adjacent_levels():
    # Ranks: d 0, b 1, a 1, c 2, e 3 → levels {d}, {a, b}, {c}, {e}: d>a, d>b, a>c, b>c, c>e.
    record = Record(prompt="p", completions=["a", "b", "c", "d", "e"], ranking=[1, 1, 2, 0, 3])
    out = ranking_to_pairs([record], strategy="adjacent")
    assert [r.completions for r in out] == [["d", "a"], ["d", "b"], ["a", "c"], ["b", "c"], ["c", "e"]]
    assert not out.dropped  # adjacent levels never tie
    strict = Record(prompt="p", completions=["w", "x", "y", "z"], ranking=[3, 0, 2, 1])
    assert len(ranking_to_pairs([strict], strategy="adjacent").records) == 3  # K - 1


def test_pairs_to_labels_unpaired_and_paired():
    pair = Record(prompt="p", completions=["bad", "good"], ranking=[1, 0], id="x", roles=["", ""])
    triple = Record(prompt="p", completions=["a", "b", "c"], ranking=[0, 1, 2])
    tie = Record(prompt="p", completions=["a", "b"], ranking=[0, 0])
    out = pairs_to_labels([pair, triple, tie])
    assert [(r.completions, r.labels, r.id, r.ranking) for r in out] == [
        (["good"], [True], "x:chosen", None),
        (["bad"], [False], "x:rejected", None),
    ]
    assert out.records[0].roles == [""]
    assert out.dropped == {"record that is not a pair (run ranking_to_pairs first)": 1, "pair tied": 1}
    (paired,) = pairs_to_labels([pair], paired=True).records
    assert (paired.completions, paired.labels) == (["good", "bad"], [True, False])


def test_ratings_to_labels_threshold():
    out = ratings_to_labels([RATED], threshold=3)
    assert [(r.completions, r.labels) for r in out] == [
        (["c0"], [True]),
        (["c1"], [True]),
        (["c2"], [True]),
        (["c3"], [False]),
    ]
    (grouped,) = ratings_to_labels([RATED], threshold=4, paired=True).records
    assert grouped.labels == [False, True, True, False]


def test_registry_and_specs():
    assert set(CONVERSIONS) == {
        "ratings_to_pairs",
        "ratings_to_ranking",
        "ratings_to_labels",
        "ranking_to_pairs",
        "pairs_to_labels",
        "ranking_to_scores",
    }
    assert parse_spec("ratings_to_pairs:strategy=best_vs_worst,min_margin=1.5,aspect=q") == (
        "ratings_to_pairs",
        {"strategy": "best_vs_worst", "min_margin": 1.5, "aspect": "q"},
    )
    assert convert([RATED], "ratings_to_pairs", strategy="best_vs_worst").records[0].completions == [
        "c1",
        "c3",
    ]
    with pytest.raises(ValueError, match="unknown conversion"):
        convert([RATED], "nope")
    with pytest.raises(ValueError, match="its options are"):
        convert([RATED], "pairs_to_labels", threshold=1)


def test_ranking_to_scores_gives_graded_labels_from_ranks():
    from alignlab.data.conversions import ranking_to_scores
    from alignlab.data.records import Record

    records = [Record("p", ["a", "b", "c"], ranking=[1, 0, 1]), Record("q", ["x"])]
    converted = ranking_to_scores(records)
    assert [s["rank_score"] for s in converted.records[0].scores] == [0.0, 1.0, 0.0]
    assert converted.records[0].ranking == [1, 0, 1]
    assert dict(converted.dropped) == {"record without ranking": 1}
