"""Tokenising a dataset shows a progress bar (records done of the split's total) unless progress is off, and
tokenising in chunks gives the same groups and report as one pass."""

import io

from rich.console import Console

from alignlab.data.records import Record
from alignlab.data.settings import DataSettings
from alignlab.data.tokenize import Truncation, tokenize_records
from alignlab.models.tiny import tiny_tokenizer
from alignlab.objectives import Objective
from alignlab.train.data import load_data

# 10 preference pairs; record 3's prompt leaves no room for a completion within max_length, so it is dropped.
RECORDS = [
    Record(f"question {i} " + ("long " * 40 if i == 3 else ""), [f"good answer {i}", f"bad {i} " * (i + 1)])
    for i in range(10)
]


def _write(path, records):
    import json

    path.write_text("".join(json.dumps({"prompt": r.prompt, "chosen": r.completions[0],
                                        "rejected": r.completions[1]}) + "\n" for r in records))  # fmt: skip
    return path


def test_chunked_tokenisation_matches_one_pass_and_reports_each_chunk():
    tok, truncation = tiny_tokenizer(), Truncation(max_length=24, max_prompt_length=24)
    whole, whole_report = tokenize_records(RECORDS, tok, truncation)
    seen: list[int] = []
    chunked, chunked_report = tokenize_records(RECORDS, tok, truncation, progress=seen.append, chunk_size=3)
    assert seen == [3, 3, 3, 1]  # 10 records in chunks of 3
    assert [g.__dict__ for g in chunked] == [g.__dict__ for g in whole]
    assert [g.record_index for g in chunked] == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # record 3 dropped
    assert chunked_report.lines() == whole_report.lines()
    assert chunked_report.dropped_examples == {next(iter(whole_report.dropped)): [3]}


def _load(tmp_path, progress):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    settings = DataSettings(train=str(_write(tmp_path / "pairs.jsonl", RECORDS)), eval_fraction=0.2)
    objective = Objective.from_config([{"name": "dpo"}])
    train, held_out = load_data(settings, tiny_tokenizer(), objective, 0, progress=progress, console=console)
    return buffer.getvalue(), train, held_out


def test_tokenising_shows_progress_per_split_and_is_silent_when_off(tmp_path):
    shown, train, held_out = _load(tmp_path, progress=True)
    assert (len(train.records), len(held_out.records)) == (8, 2)
    assert "tokenising (train)" in shown and "8/8" in shown
    assert "tokenising (eval)" in shown and "2/2" in shown
    quiet, train_quiet, _ = _load(tmp_path, progress=False)
    assert quiet == ""
    assert [g.__dict__ for g in train_quiet.groups] == [g.__dict__ for g in train.groups]
    assert train.notes[-1].startswith("train: 8 of 8 records tokenised in ")


def test_held_out_prompts_are_written_once_each_in_the_form_eval_policies_reads(tmp_path):
    from alignlab.data.prompts import load_prompts
    from alignlab.train.data import write_eval_prompts

    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"}]  # fmt: skip
    records = [Record(chat, ["a", "b"], ranking=[0, 1]), Record("plain", ["c", "d"], ranking=[1, 0]),
               Record(chat, ["e", "f"], ranking=[0, 1])]  # fmt: skip
    _, _, held_out = _load(tmp_path, progress=False)
    held_out.records = records
    path = tmp_path / "eval_prompts.jsonl"
    assert write_eval_prompts(held_out, path) == 2  # the repeated chat prompt once
    assert [row.prompt for row in load_prompts(str(path))] == [chat, "plain"]


def test_held_out_records_are_written_as_the_pairs_eval_judge_reads(tmp_path):
    from alignlab.data.io import read_records
    from alignlab.train.data import write_eval_records

    chat = [{"role": "user", "content": "hi"}]
    records = [Record(chat, ["a", "b"], ranking=[0, 1]), Record("plain", ["c", "d"], ranking=[1, 0])]
    _, _, held_out = _load(tmp_path, progress=False)
    held_out.records = records
    path = tmp_path / "eval_records.jsonl"
    assert write_eval_records(held_out, path) == 2
    back = read_records(str(path), format="alignlab")
    assert [(r.prompt, r.completions, r.ranking) for r in back] == [
        (chat, ["a", "b"], [0, 1]),
        ("plain", ["c", "d"], [1, 0]),
    ]
