"""``just_eval_instruct`` with a generative judge: a real tiny model judges through ``alignlab eval just-eval``
(its replies are not JSON, so each must be counted and named by record id), and the parser/aggregation on
hand-written replies against numpy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alignlab.eval.registry import MetricError, run_metric

ASPECTS = ("helpfulness", "clarity", "factuality", "depth", "engagement")


def _reply(scores: tuple[int, ...]) -> str:
    return "Sure. " + json.dumps({a: {"rationale": "because", "score": s} for a, s in zip(ASPECTS, scores)})


def _parses(text: str) -> bool:
    """Independent check: the reply holds a JSON object with an integer 1..5 score for every aspect."""
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if start >= 0 else None
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and all(
        isinstance(data.get(a), dict) and data[a].get("score") in (1, 2, 3, 4, 5) for a in ASPECTS
    )


def test_hand_written_replies_give_means_and_the_unparsable_ids():
    replies = [
        _reply((5, 4, 3, 2, 1)),
        "I think it is good.",
        _reply((3, 3, 3, 4, 5)),
        _reply((4, 9, 3, 3, 3)),
    ]
    ids = ["q1", "q2", "q3", "q4"]
    with pytest.raises(MetricError, match=r"2 of 4 judge replies invalid .*record q2.*record q4"):
        run_metric("just_eval_instruct", judge_outputs=replies, ids=ids)
    res = run_metric("just_eval_instruct", judge_outputs=replies, ids=ids, on_invalid="skip")
    assert res.details["unparsable"] == 2
    assert set(res.details["unparsable_records"]) == {"q2", "q4"}
    assert "clarity score 9 outside 1..5" in res.details["unparsable_records"]["q4"]
    depth = np.array([2, 4])
    assert res["depth"].value == pytest.approx(depth.mean())
    assert res["depth"].se == pytest.approx(depth.std(ddof=1) / math.sqrt(2))
    per_reply = np.array([np.mean([5, 4, 3, 2, 1]), np.mean([3, 3, 3, 4, 5])])
    assert res["mean"].value == pytest.approx(per_reply.mean())
    assert res["unparsable_rate"].value == pytest.approx(0.5)
    assert res["unparsable_rate"].se == pytest.approx(math.sqrt(0.5 * 0.5 / 4))
    assert any("record q2" in n and "record q4" in n for n in res.notes)


def test_a_tiny_judge_model_runs_end_to_end_and_its_unparsable_replies_are_named(tmp_path, capsys):
    from alignlab.cli import main

    rows = [
        {"id": "alpha", "prompt": "Say hi", "output": "hi"},
        {"id": "beta", "prompt": "Add 2 and 2", "output": "4"},
        {"id": "gamma", "prompt": "Name a colour", "output": "   "},  # empty: reported, not judged
        {"prompt": "Spell cat", "output": "c a t"},  # no id: named by its line
    ]
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    replies = tmp_path / "replies.jsonl"
    args = ["eval", "just-eval", "--outputs", str(outputs), "--judge-model", "tiny:llama"]
    args += ["--max-new-tokens", "8", "--replies", str(replies), "--on-invalid", "skip"]
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr()
    judged = [json.loads(line) for line in replies.read_text().splitlines()]
    assert [r["id"] for r in judged] == ["alpha", "beta", "line 4"]  # gamma left out as empty
    assert all(isinstance(r["reply"], str) for r in judged)
    bad = [r["id"] for r in judged if not _parses(r["reply"])]
    assert [r["id"] for r in judged if "error" in r] == bad
    if len(bad) == len(judged):  # a random tiny model answers no JSON: the command fails, naming every record
        assert code != 0
        text = err.out + err.err
        assert f"none of the {len(judged)} judge replies could be parsed" in text
        assert all(f"record {i}" in text for i in bad)
        assert "1 of 4 outputs invalid (empty output: record gamma)" in text
    else:
        assert code == 0 and f"{len(bad)} of {len(judged)} judge replies invalid" in err.out
