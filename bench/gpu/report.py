"""Markdown for docs/performance.md from the stage JSON files a GPU call brought back (run here, not there).

    python bench/gpu/report.py bench/gpu/results/2026-11-24/*.json > /tmp/gpu.md

One section per stage present: the device and versions, a table per stage with the command of each run,
and for the anchor the ratios against the issue's targets (≥ 4× TRL's pairs/s at batch 32, ≤ 0.5× its
peak memory, ≥ 35% of peak bf16 FLOPs counting real tokens).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TARGETS = {"ratio_pairs_per_s": 4.0, "ratio_peak_memory": 0.5, "flop_utilisation": 0.35}


def fmt(value: Any, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def pct(fraction: float | None) -> str:
    return "—" if fraction is None else f"{100 * fraction:.1f}%"


def environment(env: dict[str, Any] | None) -> list[str]:
    if not env:
        return []
    gpu = env.get("gpu") or {}
    v = env.get("versions", {})
    return [
        f"Device: {gpu.get('name', '?')} ({gpu.get('memory_gib', '?')} GiB), torch {v.get('torch')} "
        f"(CUDA {gpu.get('torch_cuda')}), transformers {v.get('transformers')}, TRL {v.get('trl')}, "
        f"datasets {v.get('datasets')}, python {env.get('python')}.",
        "",
    ]


def side_cells(r: dict[str, Any]) -> str:
    each = ", ".join(fmt(x) for x in r.get("pairs_per_s_each_repeat", []))
    util = r.get("flop_utilisation")
    return (
        f"{fmt(r.get('pairs_per_s'))} ({each}) | {fmt(r.get('tokens_per_s'), '.0f')} | "
        f"{fmt(r.get('peak_memory_gb'))} | {pct(util)}"
    )


def bench_table(runs: dict[str, Any]) -> list[str]:
    lines = [
        "| run | side | batch | pairs/s (each repeat) | tokens/s | peak GB | FLOP util | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in runs.items():
        result = entry.get("result")
        command = entry["command"].split("bench/", 1)[-1]
        if not isinstance(result, dict):
            reason = (entry.get("error") or "").splitlines()[0] if entry.get("error") else "no result"
            lines.append(f"| {name} | — | — | {reason} | | | | `{command}` |")
            continue
        for side in ("alignlab", "trl"):
            if side in result:
                lines.append(
                    f"| {name} | {side} | {result['batch_pairs']} | {side_cells(result[side])} | `{command}` |"
                )
    return lines


def anchor_ratios(runs: dict[str, Any]) -> list[str]:
    """alignlab / TRL at each batch, and batch-32 alignlab against TRL with precompute_ref_log_probs."""
    get = lambda name: (runs.get(name) or {}).get("result") or {}  # noqa: E731
    rows = []
    for name in ("anchor-b8", "anchor-b32"):
        r = get(name)
        if "ratio_pairs_per_s" in r:
            rows.append((name, r["ratio_pairs_per_s"], r.get("ratio_peak_memory"), r["alignlab"]))
    a, t = get("anchor-b32").get("alignlab"), get("anchor-b32-trl-precompute").get("trl")
    if a and t:
        rows.append(
            (
                "b32 vs TRL precompute_ref",
                a["pairs_per_s"] / t["pairs_per_s"],
                a["peak_memory_gb"] / t["peak_memory_gb"],
                a,
            )
        )
    if not rows:
        return []
    lines = [
        "",
        "| comparison | alignlab / TRL pairs/s | peak memory | alignlab FLOP util | targets met |",
        "|---|---|---|---|---|",
    ]
    for name, speed, memory, side in rows:
        util = side.get("flop_utilisation")
        met = [
            speed >= TARGETS["ratio_pairs_per_s"],
            memory is not None and memory <= TARGETS["ratio_peak_memory"],
            util is not None and util >= TARGETS["flop_utilisation"],
        ]
        verdict = (
            "all"
            if all(met)
            else ", ".join(k for k, ok in zip(("≥4× speed", "≤0.5× memory", "≥35% FLOPs"), met) if not ok)
            + " not met"
        )
        lines.append(f"| {name} | {speed:.2f}× | {fmt(memory)}× | {pct(util)} | {verdict} |")
    return lines


def sweep_table(runs: dict[str, Any]) -> list[str]:
    lines = [
        "| run | tokens_per_row | attention | compile | pairs/s | tokens/s | peak GB | FLOP util | setup s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in runs.items():
        r = (entry.get("result") or {}).get("alignlab")
        if not r:
            reason = (entry.get("error") or "no result").splitlines()[0]
            lines.append(f"| {name} | | | | {reason} | | | | |")
            continue
        s = r.get("settings", {})
        util = r.get("flop_utilisation")
        lines.append(
            f"| {name} | {s.get('tokens_per_row')} | {s.get('attention', 'auto')} | {s.get('compile', False)} | "
            f"{fmt(r['pairs_per_s'])} | {fmt(r['tokens_per_s'], '.0f')} | {fmt(r['peak_memory_gb'])} | "
            f"{pct(util)} | {fmt(r.get('setup_s_incl_reference_cache'), '.1f')} |"
        )
    return lines


def ceiling_table(runs: dict[str, Any]) -> list[str]:
    lines = [
        "| side | largest batch that fits | smallest that ran out of memory | note |",
        "|---|---|---|---|",
    ]
    for name, entry in runs.items():
        found = (entry.get("result") or {}).get("max_batch")
        if not found:
            lines.append(f"| {name} | {(entry.get('error') or 'no result').splitlines()[0]} | | |")
        for side, r in (found or {}).items():
            lines.append(
                f"| {side} | {r.get('largest_batch')} | {r.get('smallest_oom', '—')} | {r.get('note', '')} |"
            )
    return lines


def tests_section(runs: dict[str, Any]) -> list[str]:
    lines = []
    pytest_run = runs.get("pytest-cuda") or {}
    result = pytest_run.get("result")
    if result:
        lines.append(
            f"pytest (`{pytest_run['command'].split(' -m pytest ', 1)[-1]}`): {result['passed']} passed, "
            f"{result['failed']} failed, {result['skipped']} skipped."
        )
        lines += [f"- {c['outcome']}: {c['test']}" for c in result["cases"] if c["outcome"] != "passed"]
    elif pytest_run:
        lines.append(f"pytest: {(pytest_run.get('error') or 'no result').splitlines()[0]}")
    timing = (runs.get("engine-timing") or {}).get("result")
    if timing:
        lines += [
            "",
            f"Engine alone, packed fwd+bwd, {timing['pairs']} pairs, {timing['real_tokens']} real tokens "
            f"in {timing['rows']} rows of {timing['row_length']}, {timing['precision']}:",
            "",
            "| setting | median ms | real tokens/s | first iteration s | peak GB | max abs Δ logp vs first |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in timing["settings"].items():
            if "error" in r:
                lines.append(f"| {name} | {r['error'].splitlines()[0][:120]} | | | | |")
                continue
            lines.append(
                f"| {name} | {r['median_ms']:.1f} | {r['real_tokens_per_s']:.0f} | "
                f"{r['first_iteration_s']:.1f} | {fmt(r['peak_memory_gb'])} | "
                f"{r['max_abs_logp_diff_vs_first']:.2e} |"
            )
    return lines


SECTIONS = {"tests": tests_section, "anchor": bench_table, "sweep": sweep_table, "ceiling": ceiling_table}


def render(records: list[dict[str, Any]]) -> str:
    order = {name: i for i, name in enumerate(SECTIONS)}
    records = sorted(records, key=lambda r: order.get(r.get("stage"), 99))
    lines = environment(next((r.get("environment") for r in records if r.get("environment")), None))
    for record in records:
        stage, runs = record["stage"], record["runs"]
        lines += [f"### {stage}", ""] + SECTIONS[stage](runs)
        if stage == "anchor":
            lines += anchor_ratios(runs)
        lines.append("")
    return "\n".join(lines)


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    print(render([json.loads(Path(p).read_text()) for p in paths]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
