"""Readers and writers: round trips through every container, errors with file:line and fix, skip reports."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from alignlab.data.io import LoadReport, load_records, read_records, write_records
from alignlab.data.records import Record, RecordError, Span


def sample_records() -> list[Record]:
    return [
        Record(prompt="What is 2+2?", completions=["4", "5"], ranking=[0, 1], id="p1", source="hand"),
        Record(
            prompt=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name a colour."},
            ],
            completions=["Red.", "Blue.", "Green is a colour."],
            ranking=[0, 0, 1],
            weight=0.5,
            annotator="a7",
        ),
        Record(
            prompt="Rate these.",
            completions=["good answer", "bad answer"],
            scores=[{"helpfulness": 4, "honesty": 3.5}, {"helpfulness": 1}],
            critique=["fine", None],
            spans=[[], [Span(0, 3, "wrong", 2.0)]],
            meta={"note": {"nested": [1, 2]}},
            roles=["", "kl"],
            context_prefixes=[None, "Critique: fine."],
        ),
        Record(prompt="Say hi.", completions=["hi"], labels=[True]),
        Record(prompt="Copy: x", completions=["x"]),
    ]


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.json", "d.parquet", "d_folder"])
def test_round_trip_every_container(tmp_path, name):
    records = sample_records()
    expected = [r.to_dict() for r in records]
    path = write_records(records, tmp_path / name)
    back = read_records(path)
    assert [r.to_dict() for r in back] == expected
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary files left behind


def test_jsonl_gz_is_really_gzip(tmp_path):
    path = write_records(sample_records()[:1], tmp_path / "a.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        assert json.loads(f.readline())["completions"] == ["4", "5"]


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


BAD_LINES = [
    json.dumps({"prompt": "ok", "completions": ["fine"]}),
    '{"prompt": "broken", "completions": ["x"]',  # line 2: malformed JSON
    json.dumps({"prompt": "no completions"}),  # line 3: missing field
    json.dumps(
        {"prompt": "empty", "completions": ["a", "  "], "ranking": [0, 1]}
    ),  # line 4: empty completion
    "[1, 2]",  # line 5: not an object
    "",  # blank line: not a record
    json.dumps({"prompt": "ok too", "completions": ["yes", "no"], "ranking": [1, 0]}),
]


def test_raise_names_file_line_and_fix(tmp_path):
    path = _write_lines(tmp_path / "bad.jsonl", BAD_LINES)
    with pytest.raises(RecordError) as info:
        read_records(path)
    message = str(info.value)
    assert f"{path}:2" in message and "invalid JSON" in message and "fix:" in message


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (2, "invalid JSON"),
        (3, "missing field 'completions'"),
        (4, "completions[1] is empty"),
        (5, "expected a JSON object, got list"),
    ],
)
def test_each_bad_line_is_reported_with_line_and_fix(tmp_path, line, needle):
    path = _write_lines(tmp_path / "bad.jsonl", BAD_LINES)
    records, report = load_records(path, on_error="skip")
    found = [e for e in report.errors if e.where == f"{path}:{line}"]
    assert len(found) == 1 and needle in found[0].detail
    assert found[0].fix  # every problem says how to fix it


def test_skip_counts_everything(tmp_path):
    path = _write_lines(tmp_path / "bad.jsonl", BAD_LINES)
    records, report = load_records(path, on_error="skip")
    assert [r.prompt for r in records] == ["ok", "ok too"]
    assert report.rows == 6 and report.records == 2 and len(report.errors) == 4
    assert sum(report.by_reason().values()) == 4
    assert "4 bad rows skipped" in report.summary()


def test_skip_without_report_warns(tmp_path):
    path = _write_lines(tmp_path / "bad.jsonl", BAD_LINES)
    with pytest.warns(UserWarning, match="4 bad rows skipped"):
        records = read_records(path, on_error="skip")
    assert len(records) == 2


def test_unknown_columns_say_pass_format(tmp_path):
    path = _write_lines(tmp_path / "odd.jsonl", [json.dumps({"question": "q", "answer": "a"})])
    with pytest.raises(RecordError) as info:
        read_records(path)
    assert "['answer', 'question']" in str(info.value) and "pass --format" in info.value.fix


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RecordError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")


def test_parquet_errors_name_the_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    table = pa.table({"prompt": ["a", "b", "c"], "completions": [["x"], [""], ["z"]]})
    pq.write_table(table, path)
    records, report = load_records(path, on_error="skip")
    assert [r.prompt for r in records] == ["a", "c"]
    assert [e.where for e in report.errors] == [f"{path}:row 1"]


def test_json_array_items_are_named(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([{"prompt": "a", "completions": ["x"]}, {"prompt": "b", "completions": []}]))
    records, report = load_records(path)
    assert len(records) == 1 and report.errors[0].where == f"{path}: item 1"


def test_datasets_dict_splits(tmp_path):
    import datasets

    rows = {"prompt": ["p1", "p2"], "chosen": ["good a", "good b"], "rejected": ["bad a", "bad b"]}
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows),
            "test": datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()}),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    test = read_records(tmp_path / "dd", split="test")
    assert [(r.prompt, r.completions, r.ranking) for r in test] == [("p1", ["good a", "bad a"], [0, 1])]
    report = LoadReport("dd")
    train = read_records(tmp_path / "dd", report=report)
    assert len(train) == 2 and "read split 'train'" in report.notes[0]
    with pytest.raises(RecordError, match="no split 'dev'"):
        read_records(tmp_path / "dd", split="dev")


def test_failed_write_leaves_old_file(tmp_path):
    path = tmp_path / "out.jsonl"
    write_records(sample_records()[:1], path, format="trl")
    before = path.read_text()
    three = Record(prompt="p", completions=["a", "b", "c"], ranking=[0, 1, 2])
    with pytest.raises(RecordError) as info:
        write_records([three], path, format="trl")
    assert "record 0" in str(info.value) and "ranking_to_pairs" in info.value.fix
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_unknown_suffix(tmp_path):
    with pytest.raises(RecordError, match="unknown file type"):
        write_records(sample_records()[:1], tmp_path / "x.csv")
