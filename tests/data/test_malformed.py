"""Every malformed file of the corpus is refused with file, line or row, field, expectation and fix, and
counted; no input gives a traceback; awkward but valid input is read unchanged.

The messages and counts are checked in process (fast) and, for the exit status, the installed
``alignlab`` console script validates the whole corpus in one subprocess run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignlab.data.io import read_records
from alignlab.data.validate import validate_file
from tests.data.malformed_corpus import CASES, REFUSED, Case

ALIGNLAB = Path(sys.executable).with_name("alignlab")


def test_corpus_is_big_enough():
    assert len(REFUSED) >= 60
    assert {c.format for c in CASES} >= {
        "auto",
        "trl",
        "trl-conversational",
        "trl-unpaired",
        "trl-sft",
        "hh-rlhf",
        "ultrafeedback",
        "oasst",
        "shp",
        "helpsteer",
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_reported_and_counted(tmp_path, case: Case):
    path = case.write(tmp_path)
    report = validate_file(path, case.format)
    got = (report.rows, report.records, len(report.problems), sum(report.dropped.values()))
    want = (case.rows if case.rows is not None else report.rows, case.records, case.problems, case.dropped)
    assert got == want, report.render()
    text = "\n".join(str(p) for p in report.problems)
    for needle in case.needles:
        assert needle in text, text
    for problem in report.problems:
        assert str(path) in problem.where  # names the file ...
        if not case.whole_file:
            assert any(m in problem.where for m in (":", "item", "row")) and problem.where != str(path)
        assert problem.fix  # ... and says how to fix it
    for note in case.notes:
        assert any(note in n for n in report.notes), report.notes
    if case.expect_record is not None:
        (record,) = read_records(path, case.format)
        assert record.to_dict() == case.expect_record  # read unchanged


def test_bad_rows_name_the_skip_setting(tmp_path):
    case = next(c for c in CASES if c.name == "duplicate-key")
    path = case.write(tmp_path)
    with pytest.raises(Exception) as info:
        read_records(path)
    assert "on_error='skip'" in str(info.value) and f"{path}:2" in str(info.value)  # the Python argument
    assert "data.on_error: skip" in validate_file(path).render()


def test_installed_command_on_the_whole_corpus(tmp_path):
    """One run of the console script over every file: per-file JSON reports equal the in-process ones, no
    traceback on stderr, and the exit status is 1 (problems found); a good file alone exits 0."""
    paths = [case.write(tmp_path) for case in CASES]
    by_format: dict[str, list[tuple[Case, Path]]] = {}
    for case, path in zip(CASES, paths, strict=True):
        by_format.setdefault(case.format, []).append((case, path))
    tried = refused = 0
    for fmt, group in by_format.items():
        run = subprocess.run(
            [str(ALIGNLAB), "data", "validate", "--json", "--format", fmt, *[str(p) for _, p in group]],
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=300,
        )
        assert "Traceback" not in run.stderr + run.stdout, run.stderr
        reports = json.loads(run.stdout)
        reports = reports if isinstance(reports, list) else [reports]
        assert len(reports) == len(group)
        for (case, path), report in zip(group, reports, strict=True):
            assert report["path"] == str(path)
            assert (report["ok"], report["records"], len(report["problems"])) == (
                case.problems == 0,
                case.records,
                case.problems,
            ), (case.name, report)
            tried += 1
            refused += not report["ok"]
        assert run.returncode == (1 if any(c.problems for c, _ in group) else 0), (fmt, run.stderr)
    assert (tried, refused) == (len(CASES), len(REFUSED))
    good = next(p for c, p in zip(CASES, paths, strict=True) if c.name == "bom")
    bad = next(p for c, p in zip(CASES, paths, strict=True) if c.name == "duplicate-key")

    def status(*args: str) -> int:
        command = [str(ALIGNLAB), "data", "validate", *args]
        return subprocess.run(command, env=os.environ, capture_output=True).returncode

    assert (status(str(good)), status(str(bad)), status("--warn-only", str(bad))) == (0, 1, 0)
