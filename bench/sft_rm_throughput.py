"""Benchmark: alignlab's SFT and reward-model training against TRL's SFTTrainer and RewardTrainer.

    python bench/sft_rm_throughput.py --device cpu --task sft          # tiny Qwen2-shaped model, fp32
    python bench/sft_rm_throughput.py --device cpu --task rm --threads 1 --repeats 3 --json
    python bench/sft_rm_throughput.py --device cuda --task sft --model qwen0.5b --batch 32

Same data, tokenizer, random weights, batch, precision and device as bench/dpo_throughput.py (built by
``dpo_sides.prepare``): the HH-RLHF harmless-base sample split into prompt / chosen / rejected, only the pairs
that fit in --max-length untruncated. ``--task sft`` trains on demonstrations (prompt + chosen) with the loss on
the completion; ``--task rm`` trains a Bradley-Terry reward model on the pairs, both sides starting from the
same body and the same initial head. Each side runs in its own process (bench/sft_rm_sides.py), --warmup steps
excluded, --repeats alternating the sides, medians reported. Units: examples/s (sft) or pairs/s (rm) and real
tokens/s (no padding; the prompt once per pair for rm). FLOP utilisation (GPU) = 6 · parameters · real
tokens/s / peak bf16 FLOP/s, where the reward model's parameters leave out the embedding (it runs no LM head).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from dpo_sides import prepare  # noqa: E402
from dpo_throughput import alternate_sides, peak_flops, report_header  # noqa: E402
from sft_rm_sides import UNIT_SINGULAR, UNITS  # noqa: E402

RM_SEED = 0  # seed of the reward head alignlab builds (model.seed); the TRL side loads the same head
LEARNING_RATE = {"sft": 2e-5, "rm": 1e-4}  # TRL's defaults for each trainer, used on both sides


def prepare_task(work: Path, task: str, data: dict[str, Any]) -> dict[str, Any]:
    """Task files on top of ``prepare``'s: SFT demonstrations, or the reward model's initial head."""
    rows = [json.loads(line) for line in open(work / "trl.jsonl", encoding="utf-8")]
    out = dict(data)
    if task == "sft":
        from transformers import AutoTokenizer

        from alignlab.data.io import write_records
        from alignlab.data.records import demonstration

        write_records([demonstration(r["prompt"], r["chosen"]) for r in rows], work / "sft_records.jsonl")
        with open(work / "sft_trl.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"prompt": r["prompt"], "completion": r["chosen"]}) + "\n")
        tokenizer = AutoTokenizer.from_pretrained(work / "model")
        eos = tokenizer.eos_token
        completion = [len(tokenizer(r["chosen"] + eos)["input_ids"]) for r in rows]
        out.update(examples=len(rows), mean_completion_tokens=sum(completion) / len(rows))
        out["flop_parameters"] = data["parameters"]
    else:
        from safetensors.torch import save_file

        from alignlab.models.reward import RewardModel

        rm = RewardModel.from_base(str(work / "model"), seed=RM_SEED)
        head = rm.reward_head.weight.detach().contiguous()
        save_file({"weight": head}, str(work / "rm_head.safetensors"))
        embedding = rm.backbone.get_input_embeddings().weight.numel()
        out["reward_model_parameters"] = sum(p.numel() for p in rm.parameters())
        out["flop_parameters"] = out["reward_model_parameters"] - embedding  # no LM head runs
    return out


def run_side(side: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    fd, spec_path = tempfile.mkstemp(suffix=".json", dir=work)
    os.close(fd)
    result_path = spec_path.replace(".json", ".result.json")
    Path(spec_path).write_text(json.dumps({**spec, "side": side}))
    proc = subprocess.run(
        [sys.executable, str(HERE / "sft_rm_sides.py"), spec_path, result_path],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{HERE.parent / 'src'}:{os.environ.get('PYTHONPATH', '')}"},
    )
    if not Path(result_path).exists():
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"the {side} {spec['task']} run failed with exit code {proc.returncode}:\n{tail}")
    result = json.loads(Path(result_path).read_text())
    if result.get("oom"):
        raise SystemExit(f"{side} ran out of memory at batch {spec['batch']}: {result['error']}")
    return result


def summarise(task: str, runs: list[dict[str, Any]], flop_params: int, peak: float | None) -> dict[str, Any]:
    """Median over repeats of each rate; the settings and paths of the first run; every repeat's rate."""
    rate = f"{UNITS[task]}_per_s"
    keys = (rate, "tokens_per_s", "peak_memory_gb", "step_s_median")
    out = {k: v for k, v in runs[0].items() if k not in keys}
    for k in keys:
        out[k] = statistics.median(r[k] for r in runs)
    out[f"{rate}_each_repeat"] = [round(r[rate], 3) for r in runs]
    out["tokens_per_s_each_repeat"] = [round(r["tokens_per_s"], 1) for r in runs]
    out[f"real_tokens_per_{UNIT_SINGULAR[task]}_each_repeat"] = [
        r[f"real_tokens_per_{UNIT_SINGULAR[task]}"] for r in runs
    ]
    out["flop_utilisation"] = 6 * flop_params * out["tokens_per_s"] / peak if peak else None
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["sft", "rm"], required=True)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument(
        "--model", choices=["tiny", "qwen0.5b", "micro"], default=None, help="default: tiny on cpu"
    )
    ap.add_argument("--vocab", type=int, default=None, help="BPE size (default 4096 on cuda, 2048 on cpu)")
    ap.add_argument("--batch", type=int, default=None, help="items per step (default 32 on cuda, 8 on cpu)")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pairs (smoke runs)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1, help="alternate the sides this many times; medians")
    ap.add_argument("--sides", default="alignlab,trl", help="comma-separated subset of alignlab,trl")
    ap.add_argument("--tokens-per-row", type=int, default=None, help="alignlab train.tokens_per_row")
    ap.add_argument("--alignlab-train", default="{}", help="JSON of extra alignlab train.* settings")
    ap.add_argument("--alignlab-model", default="{}", help="JSON of extra alignlab model.* settings")
    ap.add_argument("--trl-config", default="{}", help="JSON of extra SFTConfig / RewardConfig settings")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on cpu (default: torch's)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak bf16 TFLOP/s")
    ap.add_argument("--work", default=None, help="directory for data/model/runs (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)

    gpu = args.device == "cuda"
    model = args.model or ("qwen0.5b" if gpu else "tiny")
    vocab = args.vocab or (4096 if gpu else 2048)
    batch = args.batch or (32 if gpu else 8)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix=f"alignlab-{args.task}-bench-"))
    data = prepare_task(work, args.task, prepare(work, model, vocab, args.max_length, args.limit))
    spec = {
        "task": args.task,
        "work": str(work),
        "device": args.device,
        "batch": batch,
        "max_length": args.max_length,
        "warmup": args.warmup,
        "steps": args.steps,
        "learning_rate": LEARNING_RATE[args.task],
        "rm_seed": RM_SEED,
        "tokens_per_row": args.tokens_per_row,
        "alignlab_train": json.loads(args.alignlab_train),
        "alignlab_model": json.loads(args.alignlab_model),
        "trl_config": json.loads(args.trl_config),
        "threads": args.threads,
    }
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    peak = peak_flops(args.device, args.peak_tflops)
    report = report_header(
        args.device, data, peak, task=args.task, unit=UNITS[args.task], batch=batch, threads=args.threads
    )
    runs = alternate_sides(sides, args.repeats, lambda side: run_side(side, spec, work))
    for side in sides:
        report[side] = summarise(args.task, runs[side], data["flop_parameters"], peak)
    report["load_average_after"] = os.getloadavg()
    if "alignlab" in report and "trl" in report:
        a, t, rate = report["alignlab"], report["trl"], f"{UNITS[args.task]}_per_s"
        report[f"ratio_{rate}"] = a[rate] / t[rate]
        report["ratio_each_repeat"] = [
            round(x[rate] / y[rate], 3) for x, y in zip(runs["alignlab"], runs["trl"])
        ]
        report["ratio_peak_memory"] = (
            a["peak_memory_gb"] / t["peak_memory_gb"] if t["peak_memory_gb"] > 0 else None
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, sides)
    return report


def print_table(report: dict[str, Any], sides: list[str]) -> None:
    d, unit = report["data"], report["unit"]
    rate = f"{unit}_per_s"
    response = d.get("mean_completion_tokens", d["mean_response_tokens"])
    print(
        f"{report['task']}: device {report['device']} {report.get('device_name', '')}, {report['precision']}"
    )
    print(
        f"model {d['model']} ({d['parameters'] / 1e6:.1f}M parameters), batch {report['batch']} {unit}, "
        f"{d['pairs']} pairs (prompt ~{d['mean_prompt_tokens']:.0f}, responses ~{response:.0f} tokens), "
        f"load average {report['load_average'][0]:.1f} -> {report['load_average_after'][0]:.1f}"
    )
    print(f"{'side':10s} {unit + '/s':>10s} {'tokens/s':>10s} {'peak GB':>8s} {'FLOP util':>9s}  each repeat")
    for s in sides:
        r = report[s]
        util = f"{100 * r['flop_utilisation']:.1f}%" if r["flop_utilisation"] else "-"
        print(
            f"{s:10s} {r[rate]:10.2f} {r['tokens_per_s']:10.0f} {r['peak_memory_gb']:8.2f} {util:>9s}  "
            f"{r[f'{rate}_each_repeat']}"
        )
    if f"ratio_{rate}" in report:
        mem = report["ratio_peak_memory"]
        print(
            f"alignlab / TRL: {report[f'ratio_{rate}']:.2f}x {unit}/s (each repeat {report['ratio_each_repeat']})"
            + (f", {mem:.2f}x peak memory" if mem else "")
        )
    for s in sides:
        print(f"{s}: {report[s]['path']}; settings {report[s]['settings']}")


if __name__ == "__main__":
    main()
