"""Smoke run of bench/grpo_throughput.py on CPU: both sides run the same forced-length GRPO step and report
every key. Timed claims live in docs/performance.md only; this checks the benchmark works, not how fast."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
sys.path.insert(0, str(REPO / "bench"))

needs_trl_and_data = [
    pytest.mark.skipif(
        importlib.util.find_spec("trl") is None, reason="trl is not installed (the 'bench' extra)"
    ),
    pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is absent (../shared/data)"),
]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--group-size", "1"], "at least 2"),
        (["--sides", "alignlab,verl"], "--sides"),
        (["--prompt-sets", "long"], "--prompt-sets"),
        (["--betas", "x"], "--betas"),
        (["--trl-config", "[1]"], "JSON object"),
    ],
)
def test_bad_arguments_are_refused_with_the_flag_named(argv, message, capsys):
    from grpo_throughput import parse

    with pytest.raises(SystemExit):
        parse(argv)
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("trl") is None, reason="trl is not installed (the 'bench' extra)"
)
@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is absent (../shared/data)")
@pytest.mark.skipif(
    importlib.util.find_spec("alignlab.train.rollout_source") is None, reason="the online GRPO path is absent"
)
def test_smoke_run_both_sides_same_forced_lengths(tmp_path):
    prompts, group, new = 2, 2, 4
    cmd = [sys.executable, str(REPO / "bench" / "grpo_throughput.py"), "--model", "micro", "--vocab", "300",
           "--tokenizer-pairs", "200", "--prompt-sets", "short", "--betas", "0.04", "--prompts-per-step",
           str(prompts), "--group-size", str(group), "--max-new-tokens", str(new), "--warmup", "0", "--steps", "1",
           "--work", str(tmp_path), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    (run,) = report["runs"]
    for side in ("alignlab", "trl"):
        r = run[side]
        # forced lengths: every completion of every side is exactly max_new_tokens long
        assert r["completion_tokens_per_step"] == prompts * group * new
        assert set(r["breakdown_s_per_step"]) == {"generation", "scoring", "update"}
        assert set(r["breakdown_cpu_s_per_step"]) == {"generation", "scoring", "update"}
        assert r["breakdown_cpu_s_per_step"]["generation"] > 0
        assert r["steps_per_s"] > 0 and r["peak_memory_gb"] > 0
    assert set(run["ratio_alignlab_over_trl"]) >= {"steps_per_s", "peak_memory", "completions_per_s"}
