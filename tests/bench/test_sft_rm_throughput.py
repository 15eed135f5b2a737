"""Smoke runs of bench/sft_rm_throughput.py on CPU: both sides of each task report every key, see the same
tokens (counted here from the raw data file and the tokenizer the bench saved) and start from the same weights.

Timed claims live in bench/README.md and docs/performance.md only; this checks the benchmark works, not how fast.
"""

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
BATCH = 4

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("trl") is None, reason="trl is not installed (the 'bench' extra)"
    ),
    pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is absent (../shared/data)"),
]


def first_pairs_that_fit(tokenizer, n: int, max_length: int = 512) -> list[tuple[int, int, int]]:
    """(prompt, chosen + EOS, rejected + EOS) token counts of the first ``n`` usable HH pairs, read from the raw
    file: the prompt ends at the last "\\n\\nAssistant:", both answers follow the same prompt, differ, are not
    blank, and the prompt plus the longer answer fits in ``max_length``."""
    out = []
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            marker = "\n\nAssistant:"
            if marker not in row["chosen"]:
                continue
            cut = row["chosen"].rindex(marker) + len(marker)
            prompt, chosen = row["chosen"][:cut], row["chosen"][cut:]
            if not row["rejected"].startswith(prompt):
                continue
            rejected = row["rejected"][cut:]
            if not chosen.strip() or not rejected.strip() or chosen == rejected:
                continue
            n_p = len(tokenizer(prompt)["input_ids"])
            n_c = len(tokenizer(chosen + tokenizer.eos_token)["input_ids"])
            n_r = len(tokenizer(rejected + tokenizer.eos_token)["input_ids"])
            if n_p + max(n_c, n_r) <= max_length:
                out.append((n_p, n_c, n_r))
            if len(out) == n:
                return out
    raise AssertionError(f"fewer than {n} usable pairs in {DATA}")


def run_bench(task: str, work: Path) -> dict:
    cmd = [sys.executable, str(REPO / "bench" / "sft_rm_throughput.py"), "--task", task, "--device", "cpu",
           "--model", "micro", "--vocab", "300", "--limit", str(BATCH), "--batch", str(BATCH), "--warmup", "1",
           "--steps", "1", "--threads", "1", "--work", str(work), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def check_common(report: dict, unit: str, singular: str) -> None:
    keys = {f"{unit}_per_s", "tokens_per_s", "peak_memory_gb", "flop_utilisation", "settings", "path",
            "timed_steps", "step_s_median", f"real_tokens_per_{singular}", f"positions_per_{singular}",
            f"{unit}_per_s_each_repeat"}  # fmt: skip
    assert report["unit"] == unit and report["batch"] == BATCH and report["data"]["pairs"] == BATCH
    for side in ("alignlab", "trl"):
        assert keys <= set(report[side]), (side, keys - set(report[side]))
        assert report[side]["timed_steps"] == 1 and report[side][f"{unit}_per_s"] > 0
        assert report[side]["flop_utilisation"] is None  # no peak FLOP/s on CPU
        assert report[side]["peak_memory_gb"] > 0
    assert report["alignlab"]["layout"] == "packed"
    assert report["trl"]["settings"]["gradient_checkpointing"] is False
    rate = f"{unit}_per_s"
    assert report[f"ratio_{rate}"] == pytest.approx(report["alignlab"][rate] / report["trl"][rate])


def test_sft_both_sides_train_on_the_same_tokens(tmp_path):
    from transformers import AutoTokenizer

    report = run_bench("sft", tmp_path)
    check_common(report, "examples", "example")
    assert report["trl"]["settings"]["resolved"]["completion_only_loss"] is True
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")  # the tokenizer the bench trained and saved
    lengths = [p + c for p, c, _ in first_pairs_that_fit(tokenizer, BATCH)]
    # The one timed step holds all BATCH examples on both sides: real tokens = prompt + chosen + EOS.
    for side in ("alignlab", "trl"):
        assert report[side]["real_tokens_per_example"] == pytest.approx(sum(lengths) / BATCH), side
    # TRL pads every example to the longest in the batch; alignlab's packed row holds no padding here.
    assert report["trl"]["positions_per_example"] == pytest.approx(max(lengths))
    assert report["alignlab"]["positions_per_example"] == pytest.approx(sum(lengths) / BATCH)


def test_rm_both_sides_train_on_the_same_tokens_and_weights(tmp_path):
    from transformers import AutoTokenizer

    report = run_bench("rm", tmp_path)
    check_common(report, "pairs", "pair")
    assert report["alignlab"]["model_class"] == "RewardModel"
    assert report["trl"]["model_class"] == "Qwen2ForSequenceClassification"
    # Same initial head: alignlab builds it from its seed, TRL loads it from the file the driver wrote.
    assert report["alignlab"]["reward_head_init_sum"] == pytest.approx(report["trl"]["reward_head_init_sum"])
    assert report["alignlab"]["reward_head_init_sum"] != 0.0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    pairs = first_pairs_that_fit(tokenizer, BATCH)
    per_pair = sum(p + c + r for p, c, r in pairs) / BATCH  # the prompt once
    for side in ("alignlab", "trl"):
        assert report[side]["real_tokens_per_pair"] == pytest.approx(per_pair), side
    # TRL runs 2·BATCH rows (prompt + chosen, prompt + rejected), each padded to the longest of them.
    longest = max(p + max(c, r) for p, c, r in pairs)
    assert report["trl"]["positions_per_pair"] == pytest.approx(2 * longest)
