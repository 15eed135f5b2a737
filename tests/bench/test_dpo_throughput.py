"""Smoke run of bench/dpo_throughput.py on CPU: both sides run on the same pairs and report every key.

Timed claims live in bench/ and docs/performance.md only; this checks the benchmark works, not how fast.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("trl") is None, reason="trl is not installed (the 'bench' extra)"
    ),
    pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is absent (../shared/data)"),
]

SIDE_KEYS = {
    "pairs_per_s",
    "tokens_per_s",
    "peak_memory_gb",
    "flop_utilisation",
    "settings",
    "path",
    "timed_steps",
}


def test_smoke_run_reports_every_side_on_the_same_tokens(tmp_path):
    batch = 4
    cmd = [sys.executable, str(REPO / "bench" / "dpo_throughput.py"), "--device", "cpu", "--model", "micro",
           "--vocab", "300", "--limit", str(batch), "--batch", str(batch), "--full-epoch",
           "--work", str(tmp_path), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["data"]["pairs"] == batch and report["batch_pairs"] == batch
    peak = report["matmul_peak"]["flops"]
    assert peak == max(report["matmul_peak"]["each"]) and peak > 1e8  # any CPU multiplies faster than that
    params = report["data"]["parameters"]
    for side in ("alignlab", "trl", "trl_precompute"):
        r = report[side]
        assert SIDE_KEYS <= set(r), side
        assert r["timed_steps"] == 1 and r["pairs_per_s"] > 0  # --full-epoch: 4 pairs at batch 4, one step
        assert r["flop_utilisation"] is None  # no nominal peak FLOP/s on CPU
        # Utilisation of the peak measured in this run: the model's 6·N FLOPs per real token over it.
        assert r["measured_peak_utilisation"] == pytest.approx(6 * params * r["tokens_per_s"] / peak)
        assert 0 < r["measured_peak_utilisation"] < 1
        # One epoch end to end: setup (with the reference pass) + the epoch's pairs at the steady rate;
        # measured: setup + the one step's time.
        assert r["epoch_pairs"] == batch
        assert r["epoch_s_projected"] == pytest.approx(r["setup_s"] + batch / r["pairs_per_s"])
        assert r["epoch_s_measured"] == pytest.approx(r["setup_s"] + r["steps_s_total"])
    assert 0 < report["alignlab"]["reference_pass_s"] < report["alignlab"]["setup_s"]  # the cache fill
    assert 0 < report["trl_precompute"]["reference_pass_s"] < report["trl_precompute"]["setup_s"]
    assert report["trl"]["reference_pass_s"] is None  # its reference runs inside every step
    assert report["trl_precompute"]["settings"]["precompute_ref_log_probs"] is True
    assert report["trl"]["settings"]["precompute_ref_log_probs"] is False
    assert report["alignlab"]["layout"] == "packed"
    assert report["trl"]["settings"]["gradient_checkpointing"] is False
    # Every step holds all pairs on every side, so the real-token counts (prompt once) must agree exactly,
    # and equal the data's own mean prompt + two responses.
    d = report["data"]
    per_pair = d["mean_prompt_tokens"] + 2 * d["mean_response_tokens"]
    for side in ("alignlab", "trl", "trl_precompute"):
        assert report[side]["real_tokens_per_pair"] == pytest.approx(per_pair)
    assert report["ratio_pairs_per_s"] == pytest.approx(
        report["alignlab"]["pairs_per_s"] / report["trl"]["pairs_per_s"]
    )
    assert report["ratio_epoch_time_vs_trl_precompute"] == pytest.approx(
        report["alignlab"]["epoch_s_projected"] / report["trl_precompute"]["epoch_s_projected"]
    )
