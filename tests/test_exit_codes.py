"""Exit statuses a shell can trust, checked on the installed ``alignlab`` console script run as a
subprocess for every command group: 0 success, 1 handled error, 2 usage error, 130 Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ALIGNLAB = str(Path(sys.executable).with_name("alignlab"))


def _status(*args: str, cwd: Path) -> tuple[int, str]:
    run = subprocess.run(
        [ALIGNLAB, *args], capture_output=True, text=True, env=os.environ, cwd=cwd, timeout=300
    )
    return run.returncode, run.stderr


def test_data_validate_status_and_warn_only(tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text('{"prompt": "a", "completions": ["b"]}\n')
    bad.write_text('{"prompt": "a", "completions": ["b"], "weight": NaN}\n')
    assert _status("data", "validate", str(good), cwd=tmp_path)[0] == 0
    code, err = _status("data", "validate", str(bad), str(good), cwd=tmp_path)
    assert code == 1 and "1 of 2 files have problems" in err
    assert _status("data", "validate", "--warn-only", str(bad), cwd=tmp_path)[0] == 0


@pytest.mark.slow  # about 15 start-ups of the command (a few seconds each on a shared machine)
def test_every_command_group(tmp_path):
    data = tmp_path / "good.jsonl"
    data.write_text('{"prompt": "a", "completions": ["b"]}\n')
    db = f"sqlite:///{tmp_path / 'app.db'}"
    cases = [
        (0, ["--version"]),
        (2, ["no-such-command"]),
        (2, ["train", "--no-such-option"]),
        (1, ["train", str(tmp_path / "missing.yaml")]),
        (1, ["train", "--set", "train.epochs=.inf"]),
        (0, ["objectives", "--json"]),
        (2, ["models", "tiny", str(tmp_path / "m"), "--arch", "nope"]),
        (1, ["data", "convert", str(tmp_path / "missing.jsonl"), str(tmp_path / "out.jsonl")]),
        (2, ["data", "validate"]),
        (0, ["judges", "--json"]),
        (1, ["rm", "eval", "--model", str(tmp_path / "none"), "--data", str(data)]),
        (0, ["cache", "list", "--dir", str(tmp_path / "cache")]),
        (2, ["cache", "prune", "--dir", str(tmp_path / "cache"), "--max-size", "lots"]),
        (2, ["sim", "generate", "--out", str(tmp_path / "sim"), "--kind", "nope"]),
        (1, ["app", "stats", "nope", "--db", db]),
        (1, ["app", "projects", "--db", "sqlite:////no/such/dir/x.db"]),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: _status(*case[1], cwd=tmp_path), cases))
    for (want, args), (code, err) in zip(cases, results, strict=True):
        assert code == want, (args, code, err[-400:])
        assert "Traceback" not in err, (args, err[-400:])


def _metrics(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [x["step"] for x in lines if "loss" in x]


def _train_until(command: list[str], run: Path, past: int, sig: int) -> tuple[int, str]:
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    deadline = time.monotonic() + 300
    while len(_metrics(run)) < past:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.mark.slow  # trains a tiny model until interrupted, twice
def test_ctrl_c_and_sigterm_during_train_checkpoint_and_resume(tmp_path):
    run = tmp_path / "run"
    first = [
        ALIGNLAB,
        "train",
        "--out",
        str(run),
        "--set",
        "train.steps=5000",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.progress=false",
        "--set",
        "data.limit=64",
    ]
    code, err = _train_until(first, run, 3, signal.SIGINT)
    assert code == 130 and "Traceback" not in err, err[-800:]
    step = _metrics(run)[-1]
    assert f"interrupted at step {step} of 5000" in err and "--resume" in err, err[-800:]
    assert (run / "checkpoints" / f"step-{step}" / "manifest.json").exists()

    again = [ALIGNLAB, "train", str(run / "config.yaml"), "--out", str(run), "--resume"]
    code, err = _train_until(again, run, len(_metrics(run)) + 3, signal.SIGTERM)
    assert code == 143 and "Traceback" not in err, err[-800:]
    steps = _metrics(run)
    assert steps == list(range(1, len(steps) + 1))  # each step logged once, resumed where it stopped
    assert (run / "checkpoints" / f"step-{steps[-1]}").exists()
