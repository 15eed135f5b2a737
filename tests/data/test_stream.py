"""Streaming readers and writers, streamed conversions and tokenisation across processes."""

from __future__ import annotations

import json
import random
from collections import Counter

import pyarrow.parquet as pq
import pytest

from alignlab.data.conversions import ratings_to_pairs
from alignlab.data.io import LoadReport, iter_records, read_records, write_records
from alignlab.data.records import Record, pair
from alignlab.data.stream import convert_stream, merge_reports, tokenize_stream
from alignlab.data.tokenize import Truncation, tokenize_records


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_iter_records_reads_lazily(tmp_path):
    path = _jsonl(tmp_path / "big.jsonl", [{"prompt": f"p{i}", "completions": ["a"]} for i in range(500)])
    report = LoadReport(str(path))
    stream = iter_records(path, report=report)
    first = next(stream)
    assert first.prompt == "p0"
    # only the format-detection head (20 rows) has been read, not the 500 lines of the file
    assert report.rows == 20
    assert sum(1 for _ in stream) == 499 and report.rows == 500 and report.records == 500


def test_iter_records_raises_at_the_bad_line_after_yielding_the_good_ones(tmp_path):
    rows = [{"prompt": f"p{i}", "completions": ["a"]} for i in range(30)]
    path = tmp_path / "f.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{oops\n")
    got = []
    with pytest.raises(Exception, match=r"f.jsonl:31"):
        for record in iter_records(path):
            got.append(record)
    assert len(got) == 30


def _mixed(n):
    out = []
    for i in range(n):
        prompt = f"text {i}" if i < n // 2 else [{"role": "user", "content": f"chat {i}"}]
        extra = {"critique": ["fine", None]} if i == n - 1 else {}
        out.append(pair(prompt, f"good {i}", f"bad {i}", id=i if i % 3 else None, **extra))
    return out


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_streamed_writer_round_trips_records_whose_columns_differ_between_chunks(tmp_path, suffix):
    records = _mixed(9)  # chunks of 2: text prompts, then chat; a critique column only in the last chunk
    path = write_records(iter(records), tmp_path / f"out{suffix}", chunk_size=2)
    back = read_records(path)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in records]
    if suffix == ".parquet":
        assert pq.ParquetFile(path).num_row_groups == 5  # ceil(9 / 2): one row group per chunk


def test_streamed_writer_names_the_record_in_the_whole_stream(tmp_path):
    records = [pair("p", "a", "b") for _ in range(5)] + [Record(prompt="p", completions=["a", "b", "c"])]
    with pytest.raises(Exception, match=r"record 5\b"):
        write_records(iter(records), tmp_path / "o.jsonl", format="trl", chunk_size=2)
    assert not (tmp_path / "o.jsonl").exists()


def test_convert_stream_equals_the_whole_list_conversion():
    records = [
        Record(
            prompt=f"p{i}", completions=list("abcd"), scores=[{"q": (i * 7 + j * 3) % 5} for j in range(4)]
        )
        for i in range(40)
    ]
    whole = ratings_to_pairs(records, strategy="best_vs_random", seed=3)
    dropped: Counter = Counter()
    streamed = list(
        convert_stream(
            iter(records), "ratings_to_pairs", dropped, chunk_size=7, strategy="best_vs_random", seed=3
        )
    )
    assert [r.to_dict() for r in streamed] == [r.to_dict() for r in whole.records]
    assert dropped == whole.dropped


def _tokenizer_dir(tmp_path):
    from alignlab.models.tiny import tiny_tokenizer

    tiny_tokenizer().save_pretrained(tmp_path / "tok")
    return str(tmp_path / "tok")


def _records():
    long = " ".join(["word"] * 300)
    return [pair([{"role": "user", "content": f"q {i}"}], f"yes {i}", f"no {i}") for i in range(23)] + [
        pair("plain", long, "short"),
        pair("same", "x", "x"),
    ]


def test_tokenize_stream_in_process_equals_tokenize_records(tmp_path):
    from transformers import AutoTokenizer

    path = _tokenizer_dir(tmp_path)
    records, truncation = _records(), Truncation(max_length=64)
    groups, report = tokenize_records(records, AutoTokenizer.from_pretrained(path), truncation)
    parts = list(tokenize_stream(iter(records), path, truncation, num_proc=0, chunk_size=5))
    assert [vars(g) for part, _ in parts for g in part] == [vars(g) for g in groups]
    merged = merge_reports(r for _, r in parts)
    assert (merged.kept, merged.truncated_completions, merged.dropped) == (
        report.kept,
        report.truncated_completions,
        report.dropped,
    )
    assert merged.dropped_examples == report.dropped_examples  # indices count from the stream's start


@pytest.mark.slow
def test_tokenize_stream_across_two_processes_equals_one(tmp_path):
    path = _tokenizer_dir(tmp_path)
    records, truncation = _records(), Truncation(max_length=64)
    one = [
        vars(g)
        for part, _ in tokenize_stream(iter(records), path, truncation, num_proc=0, chunk_size=4)
        for g in part
    ]
    two = [
        vars(g)
        for part, _ in tokenize_stream(iter(records), path, truncation, num_proc=2, chunk_size=4)
        for g in part
    ]
    assert two == one


def _pairs_of_ratings(records):
    return ratings_to_pairs(records, aspect="q", strategy="all").records


def test_map_records_over_a_datasets_map_with_two_processes_equals_the_direct_call():
    import datasets

    from alignlab.data.stream import map_records, records_of

    records = [
        Record(
            prompt=f"p{i}",
            completions=["a", "b", "c"],
            scores=[{"q": float((i + j) % 3)} for j in range(3)],
            id=f"r{i}",
        )
        for i in range(24)
    ]
    dataset = datasets.Dataset.from_list([r.to_dict() for r in records])
    direct = [r.to_dict() for r in _pairs_of_ratings(records)]
    for num_proc in (None, 2):
        mapped = map_records(dataset, _pairs_of_ratings, num_proc=num_proc, batch_size=5)
        assert [r.to_dict() for r in records_of(mapped)] == direct


def test_streamed_validate_names_every_duplicate_and_its_first_copy(tmp_path):
    from alignlab.data.validate import validate_file

    a, b, c = ({"prompt": p, "completions": ["x"]} for p in "abc")
    rows = [a, b, dict(a), c, dict(a), dict(b, id="dup-b")]
    rows[2]["id"], rows[4]["id"] = 7, 9  # ids make them different records: not duplicates
    rows += [dict(a), dict(b)]
    path = _jsonl(tmp_path / "d.jsonl", rows)
    found = [(w.where, w.message) for w in validate_file(path).warnings]
    assert found == [("record 6", "duplicate of record 0"), ("record 7", "duplicate of record 1")]


@pytest.mark.parametrize("run_size", [2, 3, 1 << 16])
def test_validate_duplicates_found_across_spilled_runs(tmp_path, monkeypatch, run_size):
    """The duplicate check spills sorted runs of hashes to a temporary file and merges them: duplicates
    whose copies fall in different runs (run_size 2 and 3: 12 records in 4-6 runs, merge blocks of 64
    hashes) are named as when everything fits in one buffer (run_size 65536). Expected by hand: prompt
    p{i % 5} repeats every 5 records; record 11 carries an id, so it differs from record 1."""
    from alignlab.data import validate

    monkeypatch.setattr(validate._Duplicates.__init__, "__defaults__", (run_size, 1024))
    rows = [{"prompt": f"p{i % 5}", "completions": ["x"]} for i in range(12)]
    rows[11]["id"] = "eleven"
    found = [
        (w.where, w.message) for w in validate.validate_file(_jsonl(tmp_path / "d.jsonl", rows)).warnings
    ]
    expected = [("record 5", "duplicate of record 0"), ("record 6", "duplicate of record 1")]
    expected += [(f"record {i}", f"duplicate of record {i - 5}") for i in (7, 8, 9)]
    expected += [("record 10", "duplicate of record 0")]
    assert found == expected


def test_duplicate_runs_merge_to_the_repeated_hashes():
    """_Duplicates on bare hashes: 1,000 values in runs of 7 (143 runs, blocks of 64) give exactly the values
    counted more than once by collections.Counter."""
    from alignlab.data.validate import _Duplicates

    rng = random.Random(0)
    values = [rng.randrange(300) for _ in range(1000)] + [2**64 - 1, 2**64 - 1, 0]
    dup = _Duplicates(run_size=7, merge_bytes=512)
    for v in values:
        dup.buffer.append(v)
        if len(dup.buffer) >= dup.run_size:
            dup._write_run()
    assert len(dup.runs) > 100
    assert dup.repeated() == {v for v, n in Counter(values).items() if n > 1}


@pytest.mark.parametrize("num_proc", [None, pytest.param(2, marks=pytest.mark.slow)])
def test_tokenize_map_over_a_datasets_map_equals_tokenize_records(tmp_path, num_proc):
    """Tokenisation through ``Dataset.map`` in this process and with ``num_proc=2`` (batches of 4, so the
    identical pair and the long completion fall in different batches and workers) gives the groups and the
    report of one ``tokenize_records`` call over the whole list."""
    import datasets
    from transformers import AutoTokenizer

    from alignlab.data.stream import groups_of, report_of, tokenize_map

    path = _tokenizer_dir(tmp_path)
    chat = lambda text: [{"role": "user", "content": text}]  # noqa: E731  (one prompt type per arrow column)
    records = [r if r.is_chat else pair(chat(r.prompt), *r.completions) for r in _records()]
    truncation = Truncation(max_length=64)
    groups, report = tokenize_records(records, AutoTokenizer.from_pretrained(path), truncation)
    assert report.dropped and report.truncated_completions  # a drop and a truncation are exercised
    dataset = datasets.Dataset.from_list([r.to_dict() for r in records])
    mapped = tokenize_map(dataset, path, truncation, num_proc=num_proc, batch_size=4)
    assert [vars(g) for g in groups_of(mapped)] == [vars(g) for g in groups]
    merged = report_of(mapped)
    assert (merged.records, merged.kept, merged.truncated_completions, merged.completions) == (
        report.records,
        report.kept,
        report.truncated_completions,
        report.completions,
    )
    assert (merged.dropped, merged.dropped_examples) == (report.dropped, report.dropped_examples)
