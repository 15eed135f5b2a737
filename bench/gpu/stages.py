"""The stages of the GPU kit for issue #7: what each runs, and a runner that fits them in one device call.

    python bench/gpu/stages.py --out $OUT --work /tmp/alignlab-gpu-work anchor tests   # what run.sh calls
    python bench/gpu/stages.py --dry-run sweep          # print the commands, run nothing
    python bench/gpu/stages.py --check-args anchor      # every bench command's arguments, validated
    python bench/gpu/stages.py --cpu-smoke anchor       # each bench command on CPU, micro model, 2 pairs

Stages: ``tests`` (the CUDA-only tests + engine timing sdpa/flex/compile), ``anchor`` (alignlab vs TRL at
batch 8 and 32, and TRL with precompute_ref_log_probs), ``sweep`` (alignlab alone: tokens_per_row ×
attention, then compile), ``ceiling`` (largest batch that fits, each side), ``grpo`` (alignlab GRPO vs TRL
GRPOTrainer, bench/grpo_throughput.py: the ``hf`` sampler vs ``generate``, then both with vLLM colocated —
those runs are skipped, and say so, when vllm is not installed). Each stage writes one JSON,
``<out>/<stage>.json``, rewritten after every run so that a call cut short still returns what finished:
``{"stage", "environment", "runs": {name: {"command", "rc", "wall_s", "result" | "error"}}}``.
``--only`` picks runs by name; ``--extra`` appends arguments to every bench command (argparse keeps the
last value, so ``--extra "--steps 10"`` overrides). A deadline (``--deadline-s``, counted from
``ALIGNLAB_GPU_KIT_T0`` set by run.sh) shortens or skips runs so the call ends inside the device's limit.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BENCH = "bench/dpo_throughput.py"
GRPO_BENCH = "bench/grpo_throughput.py"


@dataclass
class Run:
    name: str
    argv: list[str]  # relative to the repo root; "{py}" is the python, "{work}" the work directory
    timeout_s: int
    kind: str = "bench"  # bench (dpo_throughput --json), pytest, json (prints one JSON object)
    gpu_only: bool = False  # cannot run on CPU at all (flex training, compile is too slow there)
    budget_flag: str | None = None  # a flag that tells the command its time budget (it then stops early)
    needs_module: str | None = None  # skipped (and recorded as such) when this module is not importable


def bench(name: str, args: str, timeout_s: int, gpu_only: bool = False) -> Run:
    common = "--device cuda --model qwen0.5b --json --reuse-prepared --work {work}/bench"
    return Run(name, ["{py}", BENCH, *shlex.split(args), *shlex.split(common)], timeout_s, gpu_only=gpu_only)


# vLLM colocated with training on the one GPU: alignlab's vllm sampler and TRL's vllm_mode="colocate".
VLLM_ALIGNLAB = json.dumps({"sampler": {"backend": "vllm", "options": {"gpu_memory_utilization": 0.3}}})
VLLM_TRL = json.dumps({"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3})


def grpo(name: str, args: str, timeout_s: int, needs_module: str | None = None) -> Run:
    """A bench/grpo_throughput.py run: the qwen0.5b shape (random weights, the bench tokenizer's vocabulary
    so that its EOS is never sampled and every completion has --max-new-tokens tokens on both sides)."""
    common = "--device cuda --model qwen0.5b --json --reuse-prepared --work {work}/grpo"
    argv = ["{py}", GRPO_BENCH, *shlex.split(args), *shlex.split(common)]
    return Run(
        name, argv, timeout_s, kind="grpo", gpu_only=needs_module is not None, needs_module=needs_module
    )


def stage_runs(stage: str) -> list[Run]:
    """The runs of one stage, in order: the ones most worth having first (later ones may meet the deadline).
    Step counts: TRL is ~0.55 s a step at batch 32 on the H100 (58 pairs/s), alignlab should be < 0.15 s;
    each side process costs ~15-30 s of start-up (imports, CUDA, model load, tokenising, reference cache)."""
    if stage == "tests":
        pytest = (
            "-m pytest tests/scoring/test_flex.py tests/scoring/test_precision.py -m 'slow or not slow' -q"
        )
        pytest += " -p no:cacheprovider --junitxml {work}/junit.xml"
        timing = "bench/gpu/engine_timing.py --device cuda --model qwen0.5b --pairs 32"
        timing += " --configs sdpa,flex,sdpa+compile,flex+compile --warmup 3 --iters 10"
        return [
            Run("pytest-cuda", ["{py}", *shlex.split(pytest)], 240, kind="pytest"),
            Run(
                "engine-timing",
                ["{py}", *shlex.split(timing)],
                300,
                "json",
                gpu_only=True,
                budget_flag="--budget-s",
            ),
        ]
    if stage == "anchor":
        return [
            bench("anchor-b32", "--sides alignlab,trl --batch 32 --warmup 3 --steps 15 --repeats 2", 300),
            bench("anchor-b8", "--sides alignlab,trl --batch 8 --warmup 3 --steps 20 --repeats 2", 240),
            bench(
                "anchor-b32-trl-precompute",
                "--batch 32 --sides trl --trl-precompute-ref --warmup 3 --steps 15 --repeats 2",
                200,
            ),
        ]
    if stage == "sweep":
        runs = []
        for attention in ("sdpa", "flex"):
            for tpr in (1024, 2048, 4096, 8192):
                train = json.dumps({"attention": attention})
                args = f"--sides alignlab --batch 32 --warmup 3 --steps 15 --tokens-per-row {tpr} --alignlab-train '{train}'"
                runs.append(bench(f"sweep-{attention}-tpr{tpr}", args, 120, gpu_only=attention == "flex"))
        for attention in ("sdpa", "flex"):  # compile: more warm-up, the first steps compile and recompile
            train = json.dumps({"attention": attention, "compile": True})
            args = f"--sides alignlab --batch 32 --warmup 6 --steps 15 --tokens-per-row 2048 --alignlab-train '{train}'"
            runs.append(bench(f"sweep-compile-{attention}-tpr2048", args, 240, gpu_only=True))
        return runs
    if stage == "ceiling":
        return [
            bench("ceiling-alignlab", "--sides alignlab --max-batch-search --warmup 1 --steps 2", 300),
            bench("ceiling-trl", "--sides trl --max-batch-search --warmup 1 --steps 2", 270),
        ]
    if stage == "grpo":  # 8 prompts x group 8, 128 forced new tokens, one repeat per side and setting
        shape = "--prompts-per-step 8 --group-size 8 --max-new-tokens 128 --warmup 2 --steps 5 --repeats 1"
        vllm = f"--alignlab-online '{VLLM_ALIGNLAB}' --trl-config '{VLLM_TRL}'"
        return [
            grpo("grpo-hh", f"--prompt-sets hh --betas 0,0.04 {shape}", 270),
            grpo("grpo-short", f"--prompt-sets short --betas 0 {shape}", 150),
            grpo("grpo-vllm-hh", f"--prompt-sets hh --betas 0 {shape} {vllm}", 240, needs_module="vllm"),
        ]
    raise SystemExit(f"unknown stage '{stage}'; choose from {', '.join(STAGES)}")


STAGES = ("tests", "anchor", "sweep", "ceiling", "grpo")
# Appended to every GRPO bench command by --cpu-smoke.
GRPO_CPU_SMOKE = (
    "--device cpu --model micro --vocab 300 --tokenizer-pairs 60 --prompts-per-step 2 --group-size 2 "
    "--max-new-tokens 4 --warmup 1 --steps 1 --repeats 1"
)
# Appended to every bench command by --cpu-smoke (argparse keeps the last value of each flag).
CPU_SMOKE = "--device cpu --model micro --vocab 300 --limit 2 --batch 2 --warmup 1 --steps 1 --repeats 1 --max-batch-limit 4"


def resolve(run: Run, work: Path, extra: list[str]) -> list[str]:
    argv = [sys.executable if a == "{py}" else a.replace("{work}", str(work)) for a in run.argv]
    return argv + extra if run.kind in ("bench", "grpo") else argv


def missing_module(run: Run) -> str | None:
    """The module a run needs and this python cannot import, or None."""
    import importlib.util

    if run.needs_module and importlib.util.find_spec(run.needs_module) is None:
        return run.needs_module
    return None


def parse_json_output(stdout: str) -> Any:
    """The one JSON object a command printed last (libraries may print lines before it)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.rfind("\n{\n")
        return json.loads(text[start + 1 :]) if start >= 0 else json.loads(text[text.index("{") :])


def junit_summary(path: Path) -> dict[str, Any]:
    root = ET.parse(path).getroot()
    cases = []
    for case in root.iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = child.tag
            elif child.tag == "skipped":
                outcome = "skipped: " + (child.get("message") or "")
        cases.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "outcome": outcome,
                "time_s": float(case.get("time") or 0),
            }
        )
    count = lambda prefix: sum(c["outcome"].startswith(prefix) for c in cases)  # noqa: E731
    return {
        "passed": count("passed"),
        "failed": count("failure") + count("error"),
        "skipped": count("skipped"),
        "cases": cases,
    }


def execute(argv: list[str], timeout_s: float) -> tuple[int, str, str, float]:
    """Run in its own process group (the bench starts one process per side) and kill the group on timeout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = 124
    return rc, out, err, time.perf_counter() - t0


def run_stage(stage: str, args: argparse.Namespace, environment: Any, t0: float) -> dict[str, Any]:
    record: dict[str, Any] = {"stage": stage, "environment": environment, "runs": {}}
    target = args.out / f"{stage}.json"
    extra = shlex.split(args.extra)
    for run in select(stage_runs(stage), args.only):
        left = args.deadline_s - (time.time() - t0)
        argv = resolve(run, args.work, extra)
        entry: dict[str, Any] = {"command": shlex.join(argv), "planned_timeout_s": run.timeout_s}
        if missing_module(run):
            entry.update(rc=None, skipped=f"not run: the module {run.needs_module} is not installed here")
            print(f"[{stage}] {run.name}: skipped, no {run.needs_module}", flush=True)
        elif left < 45:
            entry.update(rc=None, error=f"not started: {left:.0f} s left before the deadline")
            print(f"[{stage}] {run.name}: skipped, {left:.0f} s left", flush=True)
        else:
            timeout = min(run.timeout_s, left - 10)
            if run.budget_flag:  # leave room for the setting in progress when the budget runs out
                argv += [run.budget_flag, str(int(max(timeout / 2, timeout - 90)))]
                entry["command"] = shlex.join(argv)
            print(f"[{stage}] {run.name} (timeout {timeout:.0f} s): {entry['command']}", flush=True)
            (args.work / "junit.xml").unlink(missing_ok=True)  # never report an earlier run's tests
            rc, out, err, wall = execute(argv, timeout)
            print(out[-20000:], err[-8000:], sep="\n", flush=True)
            entry.update(rc=rc, wall_s=round(wall, 1))
            try:
                if rc != 0:
                    raise RuntimeError("timed out" if rc == 124 else f"exit code {rc}")
                if run.kind == "pytest":
                    entry["result"] = junit_summary(args.work / "junit.xml")
                else:
                    entry["result"] = parse_json_output(out)
            except Exception as problem:  # noqa: BLE001  (record it; the other runs go on)
                if run.kind == "pytest" and (args.work / "junit.xml").exists():
                    entry["result"] = junit_summary(args.work / "junit.xml")
                entry["error"] = f"{problem}; output tail:\n{(out + err)[-4000:]}"
            print(f"[{stage}] {run.name}: rc {rc}, {wall:.0f} s", flush=True)
        record["runs"][run.name] = entry
        write_json(target, record)
    return record


def select(runs: list[Run], only: str | None) -> list[Run]:
    if not only:
        return runs
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = sorted(set(names) - {r.name for r in runs})
    if unknown:
        raise SystemExit(f"--only: no run named {unknown}; the stage has {[r.name for r in runs]}")
    return [r for r in runs if r.name in names]


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)


def check_args(stage: str, extra: list[str]) -> int:
    """Every bench command of the stage through dpo_throughput.py --check-args (its argparse + alignlab's
    config classes), in this process: one import of torch instead of one per command."""
    import contextlib
    import io

    sys.path.insert(0, str(REPO / "bench"))
    import dpo_throughput

    failures = 0
    for run in stage_runs(stage):
        if run.kind == "grpo":
            failures += not check_grpo_args(run, extra)
            continue
        if run.kind != "bench":
            continue
        argv = resolve(run, Path("/tmp/alignlab-gpu-check"), extra)
        assert argv[1] == BENCH, argv
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                dpo_throughput.main(argv[2:] + ["--check-args"])
            ok = True
        except SystemExit as stop:
            ok = stop.code in (0, None)
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {run.name}"
            + ("" if ok else "\n" + "\n".join(err.getvalue().strip().splitlines()[-4:]))
        )
    return 1 if failures else 0


def check_grpo_args(run: Run, extra: list[str]) -> bool:
    """A GRPO bench command through grpo_throughput's argparse and alignlab's online settings."""
    import contextlib
    import io

    sys.path.insert(0, str(REPO / "bench"))
    import grpo_throughput

    from alignlab.config import OnlineSettings

    argv = resolve(run, Path("/tmp/alignlab-gpu-check"), extra)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = grpo_throughput.parse(argv[2:])
        OnlineSettings.model_validate({"prompts": "x.jsonl", **args.alignlab_online})
        ok = True
    except SystemExit as stop:
        ok = stop.code in (0, None)
    except ValueError as problem:
        ok = False
        err.write(str(problem))
    print(f"{'ok  ' if ok else 'FAIL'} {run.name}" + ("" if ok else "\n" + err.getvalue().strip()[-800:]))
    return ok


def cpu_smoke(stage: str, work: Path) -> int:
    """Each bench command of the stage, run for real on CPU with the micro model (flags appended)."""
    failures = 0
    for run in stage_runs(stage):
        if run.kind not in ("bench", "grpo") or run.gpu_only:
            print(f"skip {run.name} ({'needs CUDA' if run.gpu_only else 'not a bench command'})")
            continue
        smoke = GRPO_CPU_SMOKE if run.kind == "grpo" else CPU_SMOKE
        rc, out, err, wall = execute(resolve(run, work, shlex.split(smoke)), 900)
        ok = rc == 0
        if ok and run.kind == "grpo":
            ok = all(
                entry["ratio_alignlab_over_trl"]["steps_per_s"] > 0
                for entry in parse_json_output(out)["runs"]
            )
        elif ok:
            report = parse_json_output(out)
            ok = all(report[s].get("pairs_per_s") for s in ("alignlab", "trl") if s in report)
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {run.name} ({wall:.0f} s)"
            + ("" if ok else f"\n{(out + err)[-3000:]}")
        )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stages", nargs="+", choices=STAGES)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print each run's command; run nothing")
    mode.add_argument("--check-args", action="store_true", help="validate every bench command's arguments")
    mode.add_argument("--cpu-smoke", action="store_true", help="run the bench commands on CPU, micro model")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "/tmp/alignlab-gpu-out"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/alignlab-gpu-work"))
    ap.add_argument(
        "--environment", type=Path, default=None, help="preflight.py's JSON, copied into each stage"
    )
    ap.add_argument("--only", default=None, help="comma-separated run names (one stage)")
    ap.add_argument("--extra", default="", help="arguments appended to every bench command")
    ap.add_argument(
        "--deadline-s", type=float, default=float(os.environ.get("ALIGNLAB_GPU_KIT_DEADLINE", 570))
    )
    args = ap.parse_args(argv)
    if args.only and len(args.stages) > 1:
        ap.error("--only picks runs of one stage; name one stage")
    if args.dry_run:
        for stage in args.stages:
            for run in select(stage_runs(stage), args.only):
                print(
                    f"{stage}\t{run.name}\t{run.timeout_s}\t{shlex.join(resolve(run, args.work, shlex.split(args.extra)))}"
                )
        return 0
    if args.check_args:
        return max(check_args(stage, shlex.split(args.extra)) for stage in args.stages)
    if args.cpu_smoke:
        return max(cpu_smoke(stage, args.work) for stage in args.stages)
    t0 = float(os.environ.get("ALIGNLAB_GPU_KIT_T0") or time.time())
    environment = json.loads(args.environment.read_text()) if args.environment else None
    failed = 0
    for stage in args.stages:
        record = run_stage(stage, args, environment, t0)
        for name, entry in record["runs"].items():
            failed += entry.get("rc") != 0 and "skipped" not in entry
            print(
                f"SUMMARY {stage} {name}: rc {entry.get('rc')} {entry.get('wall_s', '-')} s "
                f"{one_line(entry.get('result'))}"
            )
    print(f"results: {', '.join(str(args.out / f'{s}.json') for s in args.stages)}")
    return 1 if failed else 0


def one_line(result: Any) -> str:
    """The figures of one run in a line, for the end of the log (the device shows only its tail)."""
    if not isinstance(result, dict):
        return ""
    if "cases" in result:
        return f"passed {result['passed']} failed {result['failed']} skipped {result['skipped']}"
    if "settings" in result and isinstance(result["settings"], dict) and "real_tokens" in result:
        return "; ".join(
            f"{k} {v.get('median_ms', 0):.1f} ms" if "median_ms" in v else f"{k} error"
            for k, v in result["settings"].items()
        )
    if isinstance(result.get("runs"), list):  # the GRPO bench: one entry per prompt set and beta
        return "; ".join(
            f"{e['prompts']} b{e['beta']}: {e['alignlab']['steps_per_s']:.2f} / {e['trl']['steps_per_s']:.2f} "
            f"steps/s ({e['ratio_alignlab_over_trl']['steps_per_s']:.2f}x)"
            for e in result["runs"]
            if "ratio_alignlab_over_trl" in e
        )
    parts = []
    for side in ("alignlab", "trl"):
        if side in result:
            r = result[side]
            util = r.get("flop_utilisation")
            parts.append(
                f"{side} {r['pairs_per_s']:.1f} pairs/s {r['peak_memory_gb']:.1f} GB"
                + (f" {100 * util:.0f}% FLOPs" if util else "")
            )
    if "ratio_pairs_per_s" in result:
        parts.append(f"ratio {result['ratio_pairs_per_s']:.2f}x")
    if "max_batch" in result:
        parts.append(f"max batch {result['max_batch']}")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
