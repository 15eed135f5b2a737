"""The GPU kit's ``grpo`` stage on CPU: its runs and their arguments (GRPO bench flags, alignlab's online
settings, TRL's GRPOConfig with vLLM colocated), a run whose module is missing recorded as skipped, the
summary line, and one GRPO bench command run for real on CPU at micro size (slow).

Expected values are the issue's list (alignlab vs TRL GRPOTrainer, with and without vLLM, TRL's colocate
mode) and hand-made results, not the kit's own output."""

import os
import shlex
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KIT = REPO / "bench" / "gpu"
sys.path.insert(0, str(KIT))
sys.path.insert(0, str(REPO / "bench"))

import stages  # noqa: E402


def kit(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(KIT / "run.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},
    )


def test_grpo_stage_compares_both_samplers_and_vllm_colocated_and_its_arguments_are_accepted():
    import grpo_throughput

    GRPOConfig = pytest.importorskip("trl", reason="TRL is in the `bench` extra, not in `dev`").GRPOConfig

    proc = kit("--dry-run", "grpo")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    parsed = {}
    for stage, name, timeout, command in rows:
        assert stage == "grpo" and 0 < int(timeout) < 540
        argv = shlex.split(command)
        assert argv[1] == "bench/grpo_throughput.py"
        parsed[name] = grpo_throughput.parse(argv[2:])
    assert all(a.device == "cuda" and a.model == "qwen0.5b" for a in parsed.values())
    assert all(a.side_list == ["alignlab", "trl"] for a in parsed.values())
    plain = [a for a in parsed.values() if not a.trl_config]
    assert {s for a in plain for s in a.set_list} == {"hh", "short"} and 0.04 in plain[0].beta_list
    (vllm,) = [a for a in parsed.values() if a.trl_config]
    assert vllm.alignlab_online["sampler"]["backend"] == "vllm"
    assert vllm.trl_config["use_vllm"] and vllm.trl_config["vllm_mode"] == "colocate"
    config = GRPOConfig(output_dir="/tmp/unused", use_cpu=True, **vllm.trl_config)  # TRL accepts them
    assert config.vllm_mode == "colocate"
    (run,) = [r for r in stages.stage_runs("grpo") if r.name == "grpo-vllm-hh"]
    assert run.needs_module == "vllm" and run.gpu_only

    ok = kit("--check-args", "grpo")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("ok  ") == len(rows)
    bad = kit("--check-args", "grpo", "--extra", '--alignlab-online \'{"sampler": {"backend": 3}}\'')
    assert bad.returncode == 1 and "FAIL grpo-hh" in bad.stdout


def test_a_run_whose_module_is_missing_is_recorded_as_skipped_not_failed(tmp_path, monkeypatch):
    runs = [
        stages.Run(
            "needs-vllm", ["{py}", "-c", "print(1)"], 30, kind="json", needs_module="no_such_module_x"
        ),
        stages.Run("plain", ["{py}", "-c", "print('{\"a\": 1}')"], 30, kind="json"),
    ]
    monkeypatch.setattr(stages, "stage_runs", lambda stage: runs)
    args = Namespace(out=tmp_path / "out", work=tmp_path / "work", extra="", only=None, deadline_s=600.0)
    record = stages.run_stage("grpo", args, None, time.time())
    skipped = record["runs"]["needs-vllm"]
    assert skipped["rc"] is None and "no_such_module_x is not installed" in skipped["skipped"]
    assert record["runs"]["plain"]["result"] == {"a": 1}


def test_summary_line_of_a_grpo_result():
    result = {
        "runs": [
            {
                "prompts": "hh",
                "beta": 0.0,
                "alignlab": {"steps_per_s": 2.5},
                "trl": {"steps_per_s": 1.0},
                "ratio_alignlab_over_trl": {"steps_per_s": 2.5},
            }
        ]
    }
    assert stages.one_line(result) == "hh b0.0: 2.50 / 1.00 steps/s (2.50x)"


@pytest.mark.slow
def test_cpu_smoke_runs_the_grpo_bench_commands_that_need_no_gpu(tmp_path):
    pytest.importorskip("trl", reason="the bench's TRL side needs the `bench` extra")
    proc = subprocess.run(
        [sys.executable, str(KIT / "stages.py"), "--cpu-smoke", "grpo", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   grpo-hh" in proc.stdout and "ok   grpo-short" in proc.stdout
    assert "skip grpo-vllm-hh (needs CUDA)" in proc.stdout
