"""Benchmark: alignlab's DPO against TRL's DPOTrainer, same model, data, batch, precision and device.

    python bench/dpo_throughput.py --device cpu                       # tiny Qwen2-shaped model, fp32
    python bench/dpo_throughput.py --device cuda --model qwen0.5b --batch 32
    python bench/dpo_throughput.py --device cuda --model qwen0.5b --trl-precompute-ref --json
    python bench/dpo_throughput.py --device cuda --model qwen0.5b --max-batch-search

Data: the HH-RLHF harmless-base sample in ../shared/data, split at the last "Assistant:" into prompt /
chosen / rejected; a byte-level BPE tokenizer trained on it; only pairs that fit in --max-length without
truncation, so both sides score exactly the same tokens. Each side runs in its own process (see
bench/dpo_sides.py), --warmup steps excluded, then --steps timed steps; --repeats alternates the sides and
reports medians. tokens/s counts real tokens with the prompt once (the useful work, the same count for both
sides). FLOP utilisation (GPU) = 6 · parameters · real tokens/s / peak bf16 FLOP/s of the device; on every
device also / the matmul peak measured in this run (``measured_peak_utilisation``: a loop of square matmuls
in the benchmark's precision and thread count, before and after the sides, the faster kept).

Sides: ``alignlab`` (its loop, reference log-probs from its cache), ``trl`` (DPOTrainer with a reference
model that runs every step) and ``trl_precompute`` (DPOTrainer with ``precompute_ref_log_probs=True``). Each
reports steady-state pairs/s and the end-to-end time of one epoch: its setup (loading, tokenising and its
reference pass: alignlab's cache fill, TRL's precompute pass; plain TRL has none) plus the epoch's pairs at
the steady-state rate (``epoch_s_projected``), or measured over a whole epoch with ``--full-epoch``.
TRL is a benchmark-only dependency (the ``bench`` extra); the alignlab package never imports it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from dpo_sides import prepare  # noqa: E402

SIDES = ("alignlab", "trl", "trl_precompute")
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops(device: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16_FLOPS.items():
        if key in name:
            return value
    return None


def measure_matmul_peak(device: str, threads: int | None, seconds: float = 3.0) -> dict[str, Any]:
    """FLOP/s of the fastest of several timed windows of square matmuls, in the benchmark's precision
    (fp32 on cpu, bf16 on cuda) and thread count: the peak this machine reaches now, for utilisation."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    n = 8192 if device == "cuda" else 1024
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(2):  # warm-up
        a @ b
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        reps, t = 0, time.perf_counter()
        while reps < 3 or time.perf_counter() - t < 0.2:
            a @ b
            reps += 1
        sync()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return {
        "flops": best,
        "matrix": n,
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
    }


def report_header(device: str, data: dict[str, Any], peak: float | None, **extra: Any) -> dict[str, Any]:
    """What every bench report starts with: device, precision, data, peak FLOP/s and the machine's load."""
    report: dict[str, Any] = {
        "device": device,
        "precision": "bf16 autocast, fp32 weights (both sides)" if device == "cuda" else "fp32 (both sides)",
        **extra,
        "data": data,
        "peak_flops": peak,
        "load_average": os.getloadavg(),
    }
    if device == "cuda":
        import torch

        report["device_name"] = torch.cuda.get_device_name()
    return report


def alternate_sides(sides: list[str], repeats: int, run: Any) -> dict[str, list[dict[str, Any]]]:
    """``run(side)`` for every side, ``repeats`` times, the sides alternating (so drift hits both alike)."""
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for _ in range(repeats):
        for side in sides:
            runs[side].append(run(side))
    return runs


def run_side(side: str, spec: dict[str, Any], work: Path, batch: int) -> dict[str, Any]:
    spec = {**spec, "side": side, "batch": batch}
    fd, spec_path = tempfile.mkstemp(suffix=".json", dir=work)
    os.close(fd)
    result_path = spec_path.replace(".json", ".result.json")
    Path(spec_path).write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, str(HERE / "dpo_sides.py"), spec_path, result_path],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{HERE.parent / 'src'}:{os.environ.get('PYTHONPATH', '')}"},
    )
    if not Path(result_path).exists():
        tail = (proc.stdout + proc.stderr)[-3000:]
        oom = "out of memory" in tail.lower()
        if oom:
            return {"oom": True, "error": "killed: out of memory"}
        raise RuntimeError(f"the {side} run (batch {batch}) failed with exit code {proc.returncode}:\n{tail}")
    return json.loads(Path(result_path).read_text())


def summarise(
    runs: list[dict[str, Any]], params: int, peak: float | None, measured_peak: float | None = None
) -> dict[str, Any]:
    """Median over repeats of each rate and time; the settings and paths of the first run.

    ``epoch_s_projected`` = setup (with the reference pass) + the epoch's pairs / steady-state pairs/s;
    ``epoch_s_measured`` = setup + every step's time, when the run covered a whole epoch (``--full-epoch``).
    """
    keys = ("pairs_per_s", "tokens_per_s", "peak_memory_gb", "step_s_median")
    timed = ("setup_s", "reference_pass_s", "epoch_s_projected", "epoch_s_measured")
    for r in runs:
        if r.get("setup_s") is not None and r.get("epoch_pairs"):
            r["epoch_s_projected"] = r["setup_s"] + r["epoch_pairs"] / r["pairs_per_s"]
            if r.get("full_epoch"):
                r["epoch_s_measured"] = r["setup_s"] + r["steps_s_total"]
    out = {k: v for k, v in runs[0].items() if k not in keys + timed}
    for k in keys:
        out[k] = statistics.median(r[k] for r in runs)
    for k in timed:
        values = [r[k] for r in runs if r.get(k) is not None]
        out[k] = statistics.median(values) if values else None
    out["pairs_per_s_each_repeat"] = [round(r["pairs_per_s"], 3) for r in runs]
    out["flop_utilisation"] = 6 * params * out["tokens_per_s"] / peak if peak else None
    out["measured_peak_utilisation"] = (
        6 * params * out["tokens_per_s"] / measured_peak if measured_peak else None
    )
    return out


def max_batch(side: str, spec: dict[str, Any], work: Path, start: int, limit: int) -> dict[str, Any]:
    """Largest batch that runs without running out of memory: doubling, then bisection."""
    trial = {**spec, "warmup": 1, "steps": 1}
    fits, fails, b = 0, None, start
    while b <= limit:
        if run_side(side, trial, work, b).get("oom"):
            fails = b
            break
        fits, b = b, b * 2
    if fails is None:
        return {"largest_batch": fits, "note": f"no OOM up to --max-batch-limit {limit}"}
    while fails - fits > max(1, fits // 16):  # to within ~6%
        mid = (fits + fails) // 2
        if run_side(side, trial, work, mid).get("oom"):
            fails = mid
        else:
            fits = mid
    return {"largest_batch": fits, "smallest_oom": fails}


def prepare_once(
    work: Path, model: str, vocab: int, max_length: int, limit: int | None, reuse: bool
) -> dict[str, Any]:
    """``prepare`` unless ``reuse`` and ``work`` already holds data prepared with the same settings."""
    key = {"model": model, "vocab": vocab, "max_length": max_length, "limit": limit}
    marker = work / "prepared.json"
    if reuse and marker.exists() and (work / "model").is_dir():
        saved = json.loads(marker.read_text())
        if saved.get("key") == key:
            return saved["data"]
    data = prepare(work, model, vocab, max_length, limit)
    marker.write_text(json.dumps({"key": key, "data": data}))
    return data


def check_args(
    ap: argparse.ArgumentParser, args: argparse.Namespace, model: str, vocab: int, batch: int
) -> dict[str, Any]:
    """What a run with these arguments would use, validated without running it: each JSON option parses
    to an object, and the alignlab settings are accepted by alignlab's own config classes (unknown keys and
    bad values are errors there). TRL's settings are only checked to be a JSON object: TRL may be absent."""
    parsed: dict[str, dict[str, Any]] = {}
    for flag in ("alignlab_train", "alignlab_model", "trl_config"):
        try:
            value = json.loads(getattr(args, flag))
        except json.JSONDecodeError as err:
            ap.error(
                f"--{flag.replace('_', '-')} is not valid JSON ({err}); pass an object like '{{\"key\": 1}}'"
            )
        if not isinstance(value, dict):
            ap.error(f"--{flag.replace('_', '-')} must be a JSON object, got {type(value).__name__}")
        parsed[flag] = value
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = sorted(set(sides) - set(SIDES))
    if unknown or not sides:
        ap.error(f"--sides must name some of {', '.join(SIDES)}, got '{args.sides}'")
    for flag in ("batch", "warmup", "steps", "repeats", "max_length", "limit", "tokens_per_row"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "warmup" else 1):
            ap.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    from pydantic import ValidationError

    from alignlab.config import TrainSettings
    from alignlab.models.loading import ModelSettings

    train = {"batch_size": batch, **parsed["alignlab_train"]}
    if args.tokens_per_row:
        train["tokens_per_row"] = args.tokens_per_row
    try:
        TrainSettings.model_validate(train)
        ModelSettings.model_validate({"device": args.device, **parsed["alignlab_model"]})
    except ValidationError as err:
        ap.error(f"--alignlab-train / --alignlab-model rejected by alignlab's config: {err}")
    return {
        "device": args.device,
        "model": model,
        "vocab": vocab,
        "batch": batch,
        "sides": sides,
        "warmup": args.warmup,
        "steps": args.steps,
        "repeats": args.repeats,
        "limit": args.limit,
        "tokens_per_row": args.tokens_per_row,
        "trl_precompute_ref": args.trl_precompute_ref,
        "max_batch_search": args.max_batch_search,
        "full_epoch": args.full_epoch,
        **parsed,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument(
        "--model",
        choices=["tiny", "qwen0.5b", "micro"],
        default=None,
        help="default: tiny on cpu, qwen0.5b on cuda (micro: smoke tests)",
    )
    ap.add_argument(
        "--vocab", type=int, default=None, help="BPE tokenizer size (default 4096 on cuda, 2048 on cpu)"
    )
    ap.add_argument("--batch", type=int, default=None, help="pairs per step (default 32 on cuda, 8 on cpu)")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pairs (smoke runs)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument(
        "--repeats", type=int, default=1, help="alternate the sides this many times; report medians"
    )
    ap.add_argument(
        "--sides",
        default="alignlab,trl,trl_precompute",
        help="comma-separated subset of alignlab,trl,trl_precompute",
    )
    ap.add_argument(
        "--trl-precompute-ref",
        action="store_true",
        help="the 'trl' side also uses precompute_ref_log_probs=True (as the side trl_precompute does)",
    )
    ap.add_argument(
        "--full-epoch",
        action="store_true",
        help="time one whole epoch (no warm-up; --steps ignored): epoch_s_measured besides the projection",
    )
    ap.add_argument(
        "--no-matmul-peak", action="store_true", help="skip measuring the matmul peak (smoke runs)"
    )
    ap.add_argument(
        "--tokens-per-row",
        type=int,
        default=None,
        help="alignlab train.tokens_per_row (default: the config's)",
    )
    ap.add_argument("--alignlab-train", default="{}", help="JSON of extra alignlab train.* settings")
    ap.add_argument("--alignlab-model", default="{}", help="JSON of extra alignlab model.* settings")
    ap.add_argument("--trl-config", default="{}", help="JSON of extra DPOConfig settings")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on cpu (default: torch's)")
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="device peak bf16 TFLOP/s (default: by name)"
    )
    ap.add_argument("--max-batch-search", action="store_true", help="largest batch that fits, both sides")
    ap.add_argument("--max-batch-limit", type=int, default=1024)
    ap.add_argument("--work", default=None, help="directory for data/model/runs (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument(
        "--reuse-prepared",
        action="store_true",
        help="skip the data/tokenizer/model preparation when --work already holds it for the same "
        "--model/--vocab/--max-length/--limit (several runs in one work directory)",
    )
    ap.add_argument(
        "--check-args",
        action="store_true",
        help="validate the arguments (JSON options, alignlab settings) and print them; run nothing",
    )
    args = ap.parse_args(argv)

    gpu = args.device == "cuda"
    model = args.model or ("qwen0.5b" if gpu else "tiny")
    vocab = args.vocab or (4096 if gpu else 2048)
    batch = args.batch or (32 if gpu else 8)
    if args.check_args:
        checked = check_args(ap, args, model, vocab, batch)
        print(json.dumps(checked, indent=2))
        return checked
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="alignlab-dpo-bench-"))
    data = prepare_once(work, model, vocab, args.max_length, args.limit, args.reuse_prepared)
    warmup, steps = args.warmup, args.steps
    if args.full_epoch:
        warmup, steps = 0, math.ceil(data["pairs"] / batch)
    spec = {
        "work": str(work),
        "device": args.device,
        "max_length": args.max_length,
        "warmup": warmup,
        "steps": steps,
        "full_epoch": args.full_epoch,
        "tokens_per_row": args.tokens_per_row,
        "trl_precompute_ref": args.trl_precompute_ref,
        "alignlab_train": json.loads(args.alignlab_train),
        "alignlab_model": json.loads(args.alignlab_model),
        "trl_config": json.loads(args.trl_config),
        "threads": args.threads,
    }
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    peak = peak_flops(args.device, args.peak_tflops)
    report = report_header(args.device, data, peak, batch_pairs=batch)
    matmul = [] if args.no_matmul_peak else [measure_matmul_peak(args.device, args.threads)]

    def run(side: str) -> dict[str, Any]:
        result = run_side(side, spec, work, batch)
        if result.get("oom"):
            raise SystemExit(f"{side} ran out of memory at batch {batch}: {result['error']}")
        return result

    runs = alternate_sides(sides, args.repeats, run)
    if matmul:
        matmul.append(measure_matmul_peak(args.device, args.threads))  # after the sides: load may differ
        report["matmul_peak"] = {
            "flops": max(m["flops"] for m in matmul),
            "each": [m["flops"] for m in matmul],
            **{k: v for k, v in matmul[0].items() if k != "flops"},
        }
    measured = report["matmul_peak"]["flops"] if matmul else None
    for side in sides:
        report[side] = summarise(runs[side], data["parameters"], peak, measured)
    report["load_average_after"] = os.getloadavg()
    a = report.get("alignlab")
    for other, suffix in (("trl", ""), ("trl_precompute", "_vs_trl_precompute")):
        t = report.get(other)
        if a is None or t is None:
            continue
        report[f"ratio_pairs_per_s{suffix}"] = a["pairs_per_s"] / t["pairs_per_s"]
        report[f"ratio_peak_memory{suffix}"] = (
            a["peak_memory_gb"] / t["peak_memory_gb"] if t["peak_memory_gb"] > 0 else None
        )
        if a.get("epoch_s_projected") and t.get("epoch_s_projected"):
            report[f"ratio_epoch_time{suffix}"] = a["epoch_s_projected"] / t["epoch_s_projected"]
    if args.max_batch_search:
        report["max_batch"] = {s: max_batch(s, spec, work, batch, args.max_batch_limit) for s in sides}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, sides)
    return report


def print_table(report: dict[str, Any], sides: list[str]) -> None:
    d = report["data"]
    print(f"device {report['device']} {report.get('device_name', '')}  precision: {report['precision']}")
    print(
        f"model {d['model']} ({d['parameters'] / 1e6:.1f}M parameters), batch {report['batch_pairs']} pairs, "
        f"{d['pairs']} pairs (prompt ~{d['mean_prompt_tokens']:.0f}, responses ~{d['mean_response_tokens']:.0f} "
        f"tokens), load average {report['load_average'][0]:.1f}"
    )
    if "matmul_peak" in report:
        m = report["matmul_peak"]
        print(
            f"measured matmul peak: {m['flops'] / 1e9:.1f} GFLOP/s ({m['matrix']}² {m['dtype']}, {m['threads']} threads)"
        )
    print(
        f"{'side':15s} {'pairs/s':>9s} {'tokens/s':>10s} {'peak GB':>8s} {'FLOP util':>9s} {'of matmul':>9s} "
        f"{'ref pass s':>10s} {'epoch s':>9s}"
    )

    def pct(x: float | None) -> str:
        return f"{100 * x:.1f}%" if x else "-"

    def secs(x: float | None) -> str:
        return f"{x:.0f}" if x is not None else "-"

    for s in sides:
        r = report[s]
        print(
            f"{s:15s} {r['pairs_per_s']:9.2f} {r['tokens_per_s']:10.0f} {r['peak_memory_gb']:8.2f} "
            f"{pct(r['flop_utilisation']):>9s} {pct(r.get('measured_peak_utilisation')):>9s} "
            f"{secs(r.get('reference_pass_s')):>10s} {secs(r.get('epoch_s_projected')):>9s}"
        )
    for other, suffix in (("trl", ""), ("trl_precompute", "_vs_trl_precompute")):
        if f"ratio_pairs_per_s{suffix}" in report:
            mem = report[f"ratio_peak_memory{suffix}"]
            epoch = report.get(f"ratio_epoch_time{suffix}")
            print(
                f"alignlab / {other}: {report[f'ratio_pairs_per_s{suffix}']:.2f}x pairs/s"
                + (f", {mem:.2f}x peak memory" if mem else "")
                + (f", {epoch:.2f}x epoch time" if epoch else "")
            )
    for s in sides:
        print(
            f"{s}: {report[s]['path']}; settings {report[s]['settings']}; memory: {report[s]['memory_measure']}"
        )
    if "max_batch" in report:
        print(f"largest batch that fits: {report['max_batch']}")


if __name__ == "__main__":
    main()
