"""The `data` CLI and validate_file: counts, problems with line and fix, exit codes, conversions."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from alignlab.cli.data import app
from alignlab.data.io import read_records
from alignlab.data.validate import validate_file

runner = CliRunner()


def _file(tmp_path, rows, name="d.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = [
    {"prompt": "a", "completions": ["xx", "y"], "ranking": [0, 1]},
    {"prompt": [{"role": "user", "content": "bbbb"}], "completions": ["z"], "labels": [True]},
    {"prompt": "cc", "completions": ["u", "v", "w"], "scores": [{"s": 1}, {"s": 2}, {"s": 3}]},
]


def test_validate_counts_by_hand(tmp_path):
    report = validate_file(_file(tmp_path, GOOD))
    assert report.ok and report.records == 3 and report.format == "alignlab"
    assert report.kinds == {"ranking": 1, "labels": 1, "scores": 1}
    assert report.k_counts == {1: 1, 2: 1, 3: 1}
    assert (report.chat_prompts, report.text_prompts) == (1, 2)
    assert report.mean_prompt_chars == (1 + 4 + 2) / 3
    assert report.mean_completion_chars == (2 + 1 + 1 + 1 + 1 + 1) / 6


def test_validate_warnings(tmp_path):
    rows = [
        {"prompt": "a", "completions": ["same", "same"], "ranking": [0, 1]},
        {"prompt": "b", "completions": ["x", "y"], "ranking": [0, 0]},
        {"prompt": "b", "completions": ["x", "y"], "ranking": [0, 0]},
    ]
    report = validate_file(_file(tmp_path, rows))
    assert report.ok
    messages = [w.message for w in report.warnings]
    assert messages == [
        "two completions are identical",
        "every completion has the same rank, so it teaches no preference",
        "every completion has the same rank, so it teaches no preference",
        "duplicate of record 1",
    ]


def test_cli_validate_ok_and_json(tmp_path):
    path = _file(tmp_path, GOOD)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        "3 rows -> 3 records" in result.output
        and "K=3: 1" in result.output
        and "no problems" in result.output
    )
    result = runner.invoke(app, ["validate", str(path), "--json"])
    data = json.loads(result.output)
    assert data["records"] == 3 and data["ok"] is True and data["k"] == {"1": 1, "2": 1, "3": 1}


def test_cli_validate_problems_exit_1(tmp_path):
    path = _file(tmp_path, [GOOD[0], "{not json", {"prompt": "p", "completions": [""]}])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "2 problem(s)" in result.output
    assert (
        f"{path}:2: invalid JSON" in result.output and f"{path}:3: completions[0] is empty" in result.output
    )
    assert result.output.count("(fix:") == 2


def test_cli_validate_with_format_and_missing_file(tmp_path):
    path = _file(tmp_path, [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert runner.invoke(app, ["validate", str(path), "--format", "trl"]).exit_code == 0
    result = runner.invoke(app, ["validate", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1 and "no such file" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["validate", str(path), "--format", "bogus"])
    assert result.exit_code == 1 and "unknown format 'bogus'" in result.output


def test_cli_convert_with_conversion(tmp_path):
    src = _file(
        tmp_path, [{"prompt": "p", "response": f"r{i}", "helpfulness": h} for i, h in enumerate([1, 4, 2])]
    )
    out = tmp_path / "pairs.jsonl"
    result = runner.invoke(
        app,
        [
            "convert",
            str(src),
            str(out),
            "--from",
            "helpsteer",
            "--to",
            "trl",
            "--convert",
            "ratings_to_pairs:aspect=helpfulness,strategy=best_vs_worst",
        ],
    )
    assert result.exit_code == 0, result.output
    # best 4 (r1) against worst 1 (r0); the rating gap becomes TRL's margin column
    assert json.loads(out.read_text()) == {"prompt": "p", "chosen": "r1", "rejected": "r0", "margin": 3.0}
    assert "wrote 1 records" in result.output
    back = read_records(out)
    assert back[0].completions == ["r1", "r0"]


def test_cli_convert_errors_are_one_line(tmp_path):
    src = _file(tmp_path, [GOOD[0], {"prompt": "p", "completions": [""]}])
    out = tmp_path / "o.jsonl"
    result = runner.invoke(app, ["convert", str(src), str(out)])
    assert result.exit_code == 1 and f"{src}:2" in result.output and "--skip-bad" in result.output
    assert "Traceback" not in result.output and not out.exists()
    result = runner.invoke(app, ["convert", str(src), str(out), "--skip-bad"])
    assert result.exit_code == 0 and "1 bad rows skipped" in result.output and len(read_records(out)) == 1
    result = runner.invoke(app, ["convert", str(src), str(out), "--skip-bad", "--to", "trl-unpaired"])
    assert result.exit_code == 1 and "pairs_to_labels" in result.output
    result = runner.invoke(app, ["convert", str(src), str(out), "--skip-bad", "--convert", "nope"])
    assert result.exit_code == 1 and "unknown conversion 'nope'" in result.output
