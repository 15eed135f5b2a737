"""Benchmark: alignlab's GRPO against TRL's GRPOTrainer, same weights, prompts, sampling and reward.

    python bench/grpo_throughput.py --device cpu --threads 1 --json          # tiny Qwen2-shaped model, fp32
    python bench/grpo_throughput.py --device cpu --prompt-sets short --betas 0 --steps 2

For each prompt set (``hh``: HH-RLHF dialogues up to the last "Assistant:", ~120 tokens; ``short``: the last
human turn, ~15 tokens) and each β (0: TRL's default, no reference model; 0.04: DeepSeekMath's, k3 KL in
the loss with a reference pass), both sides run a whole GRPO step — sample ``--group-size`` completions of
``--prompts-per-step`` prompts, score them with the same rule (``grpo_sides.rule_reward``), compute
advantages, one optimiser update — with every completion forced to ``--max-new-tokens`` tokens (the
tokenizer's EOS lies outside the model's vocabulary; see ``grpo_sides``). Each side runs in its own process,
``--warmup`` steps excluded, ``--repeats`` alternating the sides; medians are reported, with the per-step
breakdown (generation / scoring / update), completions/s, generated tokens/s, peak memory and the ratios
alignlab / TRL. TRL is a benchmark-only dependency (the ``bench`` extra).
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

from dpo_throughput import alternate_sides, report_header  # noqa: E402
from grpo_sides import PROMPT_SETS, prepare  # noqa: E402


def run_side(side: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    fd, spec_path = tempfile.mkstemp(suffix=".json", dir=work)
    os.close(fd)
    result_path = spec_path.replace(".json", ".result.json")
    Path(spec_path).write_text(json.dumps({**spec, "side": side}))
    proc = subprocess.run(
        [sys.executable, str(HERE / "grpo_sides.py"), spec_path, result_path],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{HERE.parent / 'src'}:{os.environ.get('PYTHONPATH', '')}"},
    )
    if not Path(result_path).exists():
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"the {side} run failed with exit code {proc.returncode}:\n{tail}")
    result = json.loads(Path(result_path).read_text())
    if result.get("oom"):
        raise SystemExit(f"{side} ran out of memory: {result['error']}")
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats of each rate and phase; the settings of the first run; every repeat's steps/s."""
    keys = (
        "steps_per_s",
        "steps_per_cpu_s",
        "cpu_s_per_step",
        "completions_per_s",
        "generated_tokens_per_s",
        "peak_memory_gb",
        "step_s_median",
    )
    breakdowns = ("breakdown_s_per_step", "breakdown_cpu_s_per_step")
    out = {k: v for k, v in runs[0].items() if k not in keys and k not in breakdowns}
    for k in keys:
        out[k] = statistics.median(r[k] for r in runs)
    for breakdown in breakdowns:
        out[breakdown] = {
            phase: statistics.median(r[breakdown][phase] for r in runs)
            for phase in ("generation", "scoring", "update")
        }
    out["steps_per_s_each_repeat"] = [round(r["steps_per_s"], 4) for r in runs]
    out["steps_per_cpu_s_each_repeat"] = [round(r["steps_per_cpu_s"], 4) for r in runs]
    return out


def ratios(a: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    out = {
        "steps_per_s": a["steps_per_s"] / t["steps_per_s"],
        "steps_per_cpu_s": a["steps_per_cpu_s"] / t["steps_per_cpu_s"] if t["steps_per_cpu_s"] else None,
        "completions_per_s": a["completions_per_s"] / t["completions_per_s"],
        "generated_tokens_per_s": a["generated_tokens_per_s"] / t["generated_tokens_per_s"],
        "peak_memory": a["peak_memory_gb"] / t["peak_memory_gb"] if t["peak_memory_gb"] > 0 else None,
    }
    each = zip(a["steps_per_s_each_repeat"], t["steps_per_s_each_repeat"])
    out["steps_per_s_each_repeat"] = [round(x / y, 3) for x, y in each]
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--model", choices=["tiny", "micro", "qwen0.5b"], default="tiny")
    ap.add_argument("--vocab", type=int, default=2048, help="BPE tokenizer size")
    ap.add_argument(
        "--prompt-sets", default="hh,short", help=f"comma-separated subset of {','.join(PROMPT_SETS)}"
    )
    ap.add_argument("--betas", default="0,0.04", help="comma-separated KL coefficients")
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32, help="every completion's (forced) length")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument(
        "--repeats", type=int, default=1, help="alternate the sides this many times; report medians"
    )
    ap.add_argument("--sides", default="alignlab,trl", help="comma-separated subset of alignlab,trl")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per side (default 1)")
    ap.add_argument("--alignlab-train", default="{}", help="JSON of extra alignlab train.* settings")
    ap.add_argument("--alignlab-online", default="{}", help="JSON of extra alignlab online.* settings")
    ap.add_argument("--trl-config", default="{}", help="JSON of extra GRPOConfig settings")
    ap.add_argument("--work", default=None, help="directory for data/model/runs (default: a temporary one)")
    ap.add_argument(
        "--tokenizer-pairs",
        type=int,
        default=None,
        help="train the tokenizer on N HH pairs only (smoke runs)",
    )
    ap.add_argument(
        "--reuse-prepared", action="store_true", help="reuse --work's tokenizer, model and prompts"
    )
    ap.add_argument(
        "--profile", action="store_true", help="alignlab side: write a cProfile of the timed steps"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not sides or set(sides) - {"alignlab", "trl"}:
        ap.error(f"--sides must name alignlab and/or trl, got '{args.sides}'")
    sets = [s.strip() for s in args.prompt_sets.split(",") if s.strip()]
    if not sets or set(sets) - set(PROMPT_SETS):
        ap.error(f"--prompt-sets must name {' and/or '.join(PROMPT_SETS)}, got '{args.prompt_sets}'")
    try:
        betas = [float(b) for b in args.betas.split(",") if b.strip()]
    except ValueError:
        ap.error(f"--betas must be comma-separated numbers, got '{args.betas}'")
    for flag in ("alignlab_train", "alignlab_online", "trl_config"):
        try:
            value = json.loads(getattr(args, flag))
        except json.JSONDecodeError as err:
            ap.error(f"--{flag.replace('_', '-')} is not valid JSON ({err})")
        if not isinstance(value, dict):
            ap.error(f"--{flag.replace('_', '-')} must be a JSON object")
        setattr(args, flag, value)
    for flag in ("prompts_per_step", "group_size", "max_new_tokens", "steps", "repeats", "threads"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.group_size < 2:
        ap.error("--group-size must be at least 2 (GRPO compares the completions of a prompt)")
    args.side_list, args.set_list, args.beta_list = sides, sets, betas
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="alignlab-grpo-bench-"))
    prompts_needed = args.prompts_per_step * (args.warmup + args.steps)
    marker = work / "prepared.json"
    key = {
        "model": args.model,
        "vocab": args.vocab,
        "prompts": prompts_needed,
        "tokenizer": args.tokenizer_pairs,
    }
    saved = json.loads(marker.read_text()) if args.reuse_prepared and marker.exists() else None
    if saved and saved["key"] == key:
        data = saved["data"]
    else:
        data = prepare(work, args.model, args.vocab, prompts_needed, tokenizer_pairs=args.tokenizer_pairs)
        marker.write_text(json.dumps({"key": key, "data": data}))
    report = report_header(
        args.device,
        data,
        None,
        prompts_per_step=args.prompts_per_step,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        threads=args.threads,
    )
    report["runs"] = []
    for prompt_set in args.set_list:
        for beta in args.beta_list:
            spec = {
                "work": str(work),
                "device": args.device,
                "prompts": prompt_set,
                "beta": beta,
                "prompts_per_step": args.prompts_per_step,
                "group_size": args.group_size,
                "max_new_tokens": args.max_new_tokens,
                "warmup": args.warmup,
                "steps": args.steps,
                "threads": args.threads,
                "alignlab_train": args.alignlab_train,
                "alignlab_online": args.alignlab_online,
                "trl_config": args.trl_config,
                "profile": args.profile,
            }
            runs = alternate_sides(
                args.side_list, args.repeats, lambda side, spec=spec: run_side(side, spec, work)
            )
            entry: dict[str, Any] = {"prompts": prompt_set, "beta": beta}
            for side in args.side_list:
                entry[side] = summarise(runs[side])
            if "alignlab" in entry and "trl" in entry:
                entry["ratio_alignlab_over_trl"] = ratios(entry["alignlab"], entry["trl"])
            report["runs"].append(entry)
            if not args.json:
                print_entry(entry, args.side_list)
    report["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report, indent=2))
    return report


def print_entry(entry: dict[str, Any], sides: list[str]) -> None:
    print(f"prompts {entry['prompts']}, beta {entry['beta']}")
    print(
        f"  {'side':9s} {'steps/s':>8s} {'compl/s':>8s} {'gen tok/s':>9s} {'peak GB':>8s}  gen / score / update s"
    )
    for s in sides:
        r = entry[s]
        b = r["breakdown_s_per_step"]
        print(
            f"  {s:9s} {r['steps_per_s']:8.4f} {r['completions_per_s']:8.2f} {r['generated_tokens_per_s']:9.1f} "
            f"{r['peak_memory_gb']:8.2f}  {b['generation']:.2f} / {b['scoring']:.2f} / {b['update']:.2f}"
        )
    if "ratio_alignlab_over_trl" in entry:
        ratio = entry["ratio_alignlab_over_trl"]
        mem = f"{ratio['peak_memory']:.2f}x" if ratio["peak_memory"] else "-"
        cpu = f"{ratio['steps_per_cpu_s']:.2f}x" if ratio["steps_per_cpu_s"] else "-"
        print(
            f"  alignlab / TRL: {ratio['steps_per_s']:.2f}x steps/s, {cpu} steps per CPU s, {mem} peak memory"
        )


if __name__ == "__main__":
    main()
