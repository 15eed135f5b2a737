"""A run killed with SIGKILL after step k and resumed ends with the same weights as an uninterrupted run."""

import signal

from tests.train._runs import max_weight_difference, run_cli

SETTINGS = [
    "--set", "train.steps=6", "--set", "train.batch_size=4", "--set", "train.learning_rate=1e-3",
    "--set", "train.save_every=2", "--set", "train.progress=false", "--set", "data.limit=40",
    "--set", "objectives.0.name=sft",
]  # fmt: skip


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    straight = run_cli(["train", *SETTINGS, "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr

    # A real SIGKILL right after step 3 (a test callback of the loop, tests/train/_kill_at.py).
    killed = run_cli(["3", *SETTINGS, "--out", str(tmp_path / "killed")], module="tests.train._kill_at")
    assert killed.returncode == -signal.SIGKILL
    checkpoints = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir())
    assert checkpoints == ["step-2"]  # the checkpoint of step 2; step 3's work is lost with the process
    assert not (tmp_path / "killed" / "model").exists()

    again = run_cli(["train", *SETTINGS, "--out", str(tmp_path / "killed")])
    assert again.returncode == 1 and "--resume" in again.stderr  # never silently overwrites a run

    resumed = run_cli(["train", *SETTINGS, "--out", str(tmp_path / "killed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    assert max_weight_difference(tmp_path / "straight" / "model", tmp_path / "killed" / "model") < 1e-6
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert any('"step": 6' in line for line in lines)
