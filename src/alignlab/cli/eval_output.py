"""Printing ``alignlab eval`` results: a table of every figure with its interval, or one JSON object, and the
HTML report when asked (shared by the subcommands of cli/eval.py, cli/eval_policies.py and
cli/eval_sources.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def print_results(title: str, results: dict[str, Any], notes: list[str]) -> None:
    """One table: each metric's estimates (value ± SE or [95% interval])."""
    table = Table(title=title)
    for column in ("metric", "figure", "estimate", "95% interval", "n"):
        table.add_column(column, overflow="fold")
    for name, result in results.items():
        for key, est in result.estimates.items():
            lo, hi = est.interval
            table.add_row(
                name, key, est.format(4), f"[{lo:.4g}, {hi:.4g}]", "" if est.n is None else str(est.n)
            )
    console.print(table)
    for name, result in results.items():
        if "verdict" in result.details:
            console.print(f"{name}: {result.details['verdict']} (95% interval against 50)", highlight=False)
        for c in result.details.get("comparisons", []):
            lo, hi = c["ci95"]
            says = "different" if c["different"] else "not distinguishable"
            console.print(
                f"{name}: {c['higher']} − {c['lower']} = {c['difference']:.4g} [{lo:.4g}, {hi:.4g}]: {says}",
                highlight=False,
            )
    for line in notes + [n for r in results.values() for n in r.notes]:
        console.print(f"note: {line}", highlight=False)


def parse_options(options: list[str]) -> dict[str, Any]:
    """``--option key=value`` pairs, values read as YAML (numbers, lists, mappings)."""
    import yaml

    from alignlab.config import ConfigError

    out: dict[str, Any] = {}
    for item in options:
        if "=" not in item:
            raise ConfigError(f"--option {item!r}: expected key=value, e.g. --option rounds=200")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def emit(
    results: dict[str, Any],
    notes: list[str],
    as_json: bool,
    report: Path | None,
    title: str,
    extra: dict | None = None,
) -> None:
    """Print (table or JSON) and write the HTML report when asked."""
    if report is not None:
        from alignlab.eval.html_report import write_eval_report

        write_eval_report(report, title, results, notes)
    if as_json:
        out = dict(extra or {})
        out["metrics"] = {k: v.to_dict() for k, v in results.items()}
        out["notes"] = notes + [n for r in results.values() for n in r.notes]
        if report is not None:
            out["report"] = str(report)
        print(json.dumps(out, indent=2, default=str))
        return
    print_results(title, results, notes)
    if report is not None:
        console.print(f"report: {report}")
