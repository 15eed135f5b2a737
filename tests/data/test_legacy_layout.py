"""Roles and context prefixes are Record fields; files in the old layout (meta.roles, meta.context_prefixes,
meta.prob_desirable) are moved to the new places on read, counted, and rewritten by `alignlab data convert`;
a row with both places, or a record built in code with the old keys, is refused naming where and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from alignlab.data.batching import feedback_tensors
from alignlab.data.io import LoadReport, read_records
from alignlab.data.records import Record, RecordError
from alignlab.data.tokenize import tokenize_records
from alignlab.models.tiny import tiny_tokenizer

ALIGNLAB = str(Path(sys.executable).with_name("alignlab"))

OLD = [
    {"prompt": "q1", "completions": ["a", "b", "c"], "ranking": [0, 1, 2],
     "meta": {"roles": ["", "", "kl"], "context_prefixes": ["Hint: x", None, None], "note": 1}},
    {"prompt": "q2", "completions": ["d"], "labels": [True], "meta": {"prob_desirable": 0.8}},
    {"prompt": "q3", "completions": ["e", "f"], "ranking": [1, 0], "meta": {"roles": ["", ""]}},
]  # fmt: skip


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_old_meta_keys_are_moved_and_counted(tmp_path):
    report = LoadReport("old")
    records = read_records(_write(tmp_path / "old.jsonl", OLD), report=report)
    assert [r.roles for r in records] == [["", "", "kl"], None, ["", ""]]
    assert [r.context_prefixes for r in records] == [["Hint: x", None, None], None, None]
    assert [r.extras for r in records] == [{}, {"prob_desirable": 0.8}, {}]
    assert [r.meta for r in records] == [{"note": 1}, {}, {}]  # the other meta keys stay
    (note,) = report.notes
    assert "1 x meta.context_prefixes -> 'context_prefixes'" in note
    assert "1 x meta.prob_desirable -> extras.prob_desirable" in note
    assert "2 x meta.roles -> 'roles'" in note
    with pytest.warns(UserWarning, match="old layout moved on read"):  # told even without a report
        read_records(tmp_path / "old.jsonl")


def test_new_layout_reads_without_a_note(tmp_path):
    rows = [{"prompt": "q", "completions": ["a", "b"], "roles": ["", "kl"], "context_prefixes": [None, "c"]}]
    report = LoadReport("new")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (record,) = read_records(_write(tmp_path / "new.jsonl", rows), report=report)
    assert (record.roles, record.context_prefixes, report.notes) == (["", "kl"], [None, "c"], [])


def test_old_and_new_layout_feed_the_engine_alike(tmp_path):
    tok = tiny_tokenizer()
    old = read_records(_write(tmp_path / "old.jsonl", OLD[:1]), report=LoadReport("old"))
    (group,) = tokenize_records(old, tok)[0]
    # the context is the prefix's own tokens, the aux completion keeps its role (values from the tokenizer)
    assert group.context_ids == [tok("Hint: x", add_special_tokens=False)["input_ids"], [], []]
    assert group.roles == ["", "", "kl"]
    bco = read_records(_write(tmp_path / "bco.jsonl", OLD[1:2]), report=LoadReport("bco"))  # to Scores.extra
    fb = feedback_tensors(bco, tokenize_records(bco, tok)[0], max_tokens=64)
    assert fb.extras["prob_desirable"].tolist() == pytest.approx([0.8])


@pytest.mark.parametrize(
    ("meta", "new", "place"),
    [
        ({"roles": ["", ""]}, {"roles": ["", "kl"]}, "'roles'"),
        ({"context_prefixes": ["x", None]}, {"context_prefixes": [None, "y"]}, "'context_prefixes'"),
        ({"prob_desirable": 0.8}, {"extras": {"prob_desirable": 0.3}}, "extras.prob_desirable"),
    ],
)
def test_both_places_refused_with_file_and_line(tmp_path, meta, new, place):
    rows = [OLD[2], {"prompt": "q", "completions": ["a", "b"], "meta": meta, **new}]
    with pytest.raises(RecordError) as err:
        read_records(_write(tmp_path / "both.jsonl", rows))
    assert err.value.where.endswith("both.jsonl:2")
    assert "old place" in str(err.value) and place.strip("'") in str(err.value)


@pytest.mark.parametrize("key", ["roles", "context_prefixes", "prob_desirable"])
def test_record_built_in_code_with_old_keys_is_refused(key):
    record = Record("q", ["a"], meta={key: [""] if key != "prob_desirable" else 0.5})
    with pytest.raises(RecordError, match=f"meta.{key} is no longer read"):
        record.validate("record 0")


@pytest.mark.parametrize("field", ["roles", "context_prefixes"])
def test_layout_fields_need_one_entry_per_completion(field):
    with pytest.raises(RecordError, match=f"'{field}' must be a list with one entry per completion"):
        Record("q", ["a", "b"], **{field: [None if field == "context_prefixes" else ""]}).validate()
    with pytest.raises(RecordError, match=f"'{field}' must hold"):
        Record("q", ["a"], **{field: [3]}).validate()


def _alignlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ALIGNLAB, *args], capture_output=True, text=True, env=os.environ, cwd=cwd, timeout=300
    )


def test_cli_convert_moves_old_prob_desirable_and_refuses_both(tmp_path):
    """Through the installed console script: an old BCO file is read with its P(desirable) kept (moved to
    extras, counted) and rewritten in the new layout; a row with both places exits 1 naming file:line."""
    old = _write(tmp_path / "old.jsonl", OLD)
    run = _alignlab("data", "convert", str(old), str(tmp_path / "new.jsonl"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1 x meta.prob_desirable -> extras.prob_desirable" in run.stdout
    rows = [json.loads(line) for line in (tmp_path / "new.jsonl").read_text().splitlines()]
    assert rows[1]["extras"] == {"prob_desirable": 0.8} and "meta" not in rows[1]
    assert rows[0]["roles"] == ["", "", "kl"] and rows[0]["meta"] == {"note": 1}
    both = _write(tmp_path / "both.jsonl", [{**OLD[1], "extras": {"prob_desirable": 0.1}}])
    run = _alignlab("data", "convert", str(both), str(tmp_path / "out.jsonl"), cwd=tmp_path)
    assert run.returncode == 1
    assert "both.jsonl:1" in run.stderr and "extras.prob_desirable" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight": float("inf")}, "'weight' must be a finite number >= 0"),
        ({"scores": [{"q": float("inf")}]}, r"scores\[0\].q must be a finite number"),
    ],
)
def test_finite_checks_mean_finite(changes, message):
    """The checks whose messages say "finite" refuse infinity (a second, looser definition of the number
    test used to shadow the finite one); extras may still hold NaN, the "none" of Scores.extra."""
    with pytest.raises(RecordError, match=message):
        Record("q", ["a"], **changes).validate()
    Record("q", ["a", "b"], extras={"old_reward": [0.5, float("nan")]}).validate()


def test_app_upload_in_the_old_layout_is_refused_with_line_and_fix():
    """The app's upload parser builds records without the file reader: an old key is refused, not dropped."""
    from alignlab.app.records_io import parse_jsonl

    with pytest.raises(RecordError) as err:
        parse_jsonl(json.dumps(OLD[2]) + "\n", "tasks.jsonl")
    assert err.value.where == "tasks.jsonl:1" and "meta.roles is no longer read" in str(err.value)
    assert "alignlab data convert" in str(err.value)
