"""bench/smollm2_addition_demo.py on the tiny model (examples/grpo.yaml): one line per step with the
accuracy and the time split into generation / scoring / update, and the stop after --steps."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import smollm2_addition_demo  # noqa: E402


def test_demo_reports_each_steps_accuracy_and_time_breakdown(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    report = smollm2_addition_demo.main(
        [
            "--config", str(REPO / "examples" / "grpo.yaml"), "--steps", "2", "--out", str(tmp_path / "run"),
            "--set", "online.prompts_per_rollout=2", "--set", "online.sampling.n=2",
            "--set", "online.sampling.max_new_tokens=4",
        ]
    )  # fmt: skip
    rows = report["steps"]
    assert [r["step"] for r in rows] == [1, 2]
    # a randomly initialised tiny model never writes the sum (docs/online.md): every rollout scores 0
    assert all(r["accuracy"] == 0.0 for r in rows) and report["reached_60_percent"] is None
    for r in rows:
        assert r["generation_s"] > 0 and r["update_s"] > 0 and r["scoring_s"] >= 0
        assert 0 < r["completion_length"] <= 4
    out = capsys.readouterr().out
    assert "step  accuracy" in out and "60% (mean of 5) not reached" in out
