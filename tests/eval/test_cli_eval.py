"""``alignlab eval`` through the installed console script: JSON figures with their uncertainty, bad input
named by file/line/record with exit status 1 and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ALIGNLAB = Path(sys.executable).with_name("alignlab")


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ALIGNLAB), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _done(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_compute_winrate_and_bad_inputs(tmp_path, capsys, monkeypatch):
    from alignlab.cli import main

    good = _jsonl(tmp_path / "v.jsonl", [{"verdict": v} for v in (2, 2, 1, 0)])
    nan = _jsonl(tmp_path / "nan.jsonl", [{"verdict": 1.0}, {"verdict": None}, {"verdict": 0.0}])
    (tmp_path / "broken.jsonl").write_text('{"verdict": 1}\n{oops\n')
    _jsonl(tmp_path / "nofield.jsonl", [{"score": 1}])
    # Two installed-script runs at once (each mostly imports torch); the other cases run in process.
    procs = [
        _start(
            "eval",
            "compute",
            "winrate",
            "--input",
            str(good),
            "--option",
            "encoding=alpaca_eval",
            "--json",
            cwd=tmp_path,
        ),
        _start("eval", "compute", "winrate", "--input", str(nan), cwd=tmp_path),
    ]
    (rc, out, err), (bad_rc, _, bad_err) = (_done(p) for p in procs)
    assert rc == 0, err
    est = json.loads(out)["metrics"]["winrate"]["estimates"]["win_rate"]
    p = np.array([1, 1, 0, 0.5])
    assert est["value"] == pytest.approx(62.5) and est["se"] == pytest.approx(100 * p.std(ddof=1) / 2)
    lo, hi = est["ci95"]
    assert lo < 62.5 < hi
    assert bad_rc == 1 and "Traceback" not in bad_err
    assert "1 of 3 verdicts invalid (not a number (None): record 1)" in " ".join(bad_err.split())
    monkeypatch.chdir(tmp_path)
    for args, message in [
        (("--input", "broken.jsonl"), "broken.jsonl:2: invalid JSON"),
        (("--input", "nofield.jsonl"), "nofield.jsonl:1: missing field 'verdict'"),
        (("--input", "missing.jsonl"), "missing.jsonl: no such file"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", "compute", "winrate", *args])
        out, err = capsys.readouterr()
        assert exit_info.value.code == 1, args
        assert message in " ".join(err.split()) and "Traceback" not in err
    main(["eval", "compute", "winrate", "--input", str(nan), "--on-invalid", "skip", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["winrate"]["estimates"]["win_rate"]["value"] == pytest.approx(50.0)
    assert any("left out 1 of 3 verdicts" in n for n in result["notes"])
