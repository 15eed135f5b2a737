"""The converters' METHODS.md block tests: round trips and pair counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from alignlab.data.conversions import ranking_to_pairs, ratings_to_pairs
from alignlab.data.formats import get_format
from alignlab.data.records import Record, RecordError
from alignlab.data.tools import all_tools, get_tool

HH = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
if not HH.exists():
    HH = Path("/work/shared/data/hh-rlhf-harmless-base-sample.jsonl.gz")


def _records(fmt, rows):
    return list(get_format(fmt).to_records((f"row {i}", r) for i, r in enumerate(rows)))


@pytest.mark.skipif(not HH.exists(), reason="the shared HH-RLHF sample is not here")
def test_hh_round_trip_reproduces_the_raw_transcripts():
    rows = [json.loads(line) for line in gzip.open(HH, "rt", encoding="utf-8")]
    outcomes = _records("hh-rlhf", rows)
    good = [(row, out) for row, out in zip(rows, outcomes) if isinstance(out, Record)]
    assert len(good) == 1305  # 7 of the 1312 lines are refused (docs/data.md lists them)
    written = get_format("hh-rlhf").from_records([out for _, out in good])
    assert [w["chosen"] for w in written] == [row["chosen"] for row, _ in good]
    assert [w["rejected"] for w in written] == [row["rejected"] for row, _ in good]


def test_ultrafeedback_binarised_pairs_have_chosen_above_rejected():
    def completion(score, text):
        return {"response": text, "overall_score": score, "annotations": {}}

    rows = [
        {"instruction": "a", "completions": [completion(s, f"r{s}") for s in (7.0, 3.5, 9.0, 3.5)]},
        {"instruction": "b", "completions": [completion(5.0, "x"), completion(5.0, "y")]},  # all tied
        {
            "instruction": "c",
            "completions": [completion(s, f"c{i}") for i, s in enumerate((2.0, 8.0, 6.0, 1.0))],
        },
    ]
    records = _records("ultrafeedback", rows)
    for seed in range(10):
        pairs = ratings_to_pairs(records, aspect="overall_score", strategy="best_vs_random", seed=seed)
        assert len(pairs) == 2 and pairs.dropped == {"record with all ratings tied": 1}
        for p in pairs.records:
            assert p.scores is None and p.meta["margin"] > 0  # chosen's score above rejected's, never equal
        assert [p.completions[0] for p in pairs.records] == ["r9.0", "c1"]


def test_oasst_pair_counts():
    """A prompter node with m ranked assistant replies: m(m-1)/2 pairs (all) or m-1 (adjacent)."""
    for m in (2, 3, 5):
        rows = [{"message_id": "root", "parent_id": None, "role": "prompter", "text": "q"}]
        rows += [
            {
                "message_id": f"a{i}",
                "parent_id": "root",
                "role": "assistant",
                "text": f"answer {i}",
                "rank": i,
            }
            for i in range(m)
        ]
        (record,) = _records("oasst", rows)
        assert len(ranking_to_pairs([record], "all")) == m * (m - 1) // 2
        assert len(ranking_to_pairs([record], "adjacent")) == m - 1


def test_shp_swap_and_flip_gives_the_same_pair():
    row = {
        "post_id": "p",
        "history": "Which is better?",
        "human_ref_A": "first",
        "human_ref_B": "second",
        "labels": 1,
        "score_A": 10,
        "score_B": 3,
    }
    swapped = dict(row, human_ref_A="second", human_ref_B="first", labels=0, score_A=3, score_B=10)
    (a,), (b,) = _records("shp", [row]), _records("shp", [swapped])
    chosen = lambda r: (r.completions[r.ranking.index(0)], r.completions[r.ranking.index(1)])  # noqa: E731
    assert chosen(a) == chosen(b) == ("first", "second")


def test_helpsteer_attributes_within_0_to_4():
    names = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    rows = [
        dict({"prompt": "p", "response": f"r{i}"}, **{n: (i + j) % 5 for j, n in enumerate(names)})
        for i in range(4)
    ]
    (record,) = _records("helpsteer", rows)
    assert all(0 <= v <= 4 for s in record.scores for v in s.values())
    (bad,) = _records("helpsteer", [dict(rows[0], helpfulness=5)])
    assert isinstance(bad, RecordError) and "helpfulness" in str(bad)


def test_ratings_to_pairs_counts():
    record = Record(prompt="p", completions=list("abcd"), scores=[{"q": s} for s in (1.0, 4.0, 2.0, 3.0)])
    assert len(ratings_to_pairs([record], strategy="all")) == 6
    assert len(ratings_to_pairs([record], strategy="best_vs_worst")) == 1


def test_every_family_l_name_is_registered_with_its_paper_and_test():
    names = {t.name for t in all_tools()}
    data_side = {
        "convert_hh_rlhf",
        "convert_ultrafeedback",
        "convert_oasst",
        "convert_shp",
        "convert_helpsteer",
        "ratings_to_pairs",
        "oasst_trees",
        "ultrainteract_trees",
        "deita",
        "zip_fit",
        "ches_filter",
        "clear_curation",
        "got_d_selection",
        "hybrid_preference_routing",
        "reward_augmented_relabel",
        "rlaif_labeler",
        "aegis_jury",
        "magpie",
        "codeclm",
        "ensemble_instruct",
        "multifaceted_sysmsg",
        "constitutional_ai",
    }
    assert data_side <= names
    for name in data_side:
        spec = get_tool(name)
        assert spec.paper and spec.test.startswith("tests/") and spec.checked
    with pytest.raises(ValueError, match="Did you mean: deita"):
        get_tool("deitaa")
