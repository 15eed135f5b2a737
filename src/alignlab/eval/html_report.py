"""One self-contained HTML page for ``alignlab eval``: a table of every figure with its interval, and the plots
each metric's details allow (reliability diagram, Elo with intervals, win rate against length difference, gold
and proxy reward against √KL), embedded as base64 PNGs so the page opens without a server."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.eval.report import STYLE, table_html
from alignlab.eval.uncertainty import MetricResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _img(fig: Any, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    _pyplot().close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def reliability_figure(bins: list[Mapping[str, float]], ece_text: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=f"ECE {ece_text}")
    ax.set_xlabel("confidence max(p, 1 − p)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title("reliability diagram")
    ax.legend()
    fig.tight_layout()
    return _img(fig, "reliability diagram")


def elo_figure(ratings: Mapping[str, Mapping[str, Any]]) -> str:
    plt = _pyplot()
    names = sorted(ratings, key=lambda m: -ratings[m]["value"])
    values = np.array([ratings[m]["value"] for m in names])
    lo = np.array([ratings[m]["ci95"][0] for m in names])
    hi = np.array([ratings[m]["ci95"][1] for m in names])
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(names) + 2), 4))
    ax.errorbar(range(len(names)), values, yerr=[values - lo, hi - values], fmt="o", capsize=4)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("Elo (Bradley–Terry), 95% bootstrap interval")
    ax.set_title("ratings")
    fig.tight_layout()
    return _img(fig, "Elo ratings with intervals")


def length_figure(curve: Mapping[str, list[float]]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(
        curve["length_difference"], curve["win_rate"], yerr=curve["se"], fmt="o-", capsize=3, label="raw"
    )
    if "lc_win_rate" in curve:
        ax.plot(curve["length_difference"], curve["lc_win_rate"], "s--", label="GLM at equal length")
    ax.axhline(50, color="grey", lw=0.8)
    ax.set_xlabel("length(model) − length(baseline), characters (bin centre)")
    ax.set_ylabel("win rate (%)")
    ax.set_title("win rate against length difference")
    ax.legend()
    fig.tight_layout()
    return _img(fig, "win rate against length")


def overopt_figure(details: Mapping[str, Any]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    d = np.asarray(details["d"], dtype=float)
    ax.plot(d, details["gold"], "o", label="gold")
    if details.get("proxy") is not None:
        ax.plot(d, details["proxy"], "s", label="proxy")
    grid = np.linspace(max(d.min(), 1e-3), d.max(), 100)
    fit = details.get("fit", {})
    if "alpha" in fit:
        a, b = fit["alpha"], fit["beta"]
        ys = grid * (a - b * grid) if details["form"] == "bon" else grid * (a - b * np.log(grid))
        ax.plot(grid, ys, "-", label=f"fit ({details['form']})")
    ax.set_xlabel("d = √KL(π ‖ π_init)")
    ax.set_ylabel("reward gain over the initial policy")
    ax.set_title("gold and proxy reward against √KL")
    ax.legend()
    fig.tight_layout()
    return _img(fig, "gold and proxy reward against KL")


def figures_for(name: str, result: MetricResult) -> list[str]:
    d = result.details
    out = []
    if "bins" in d and d["bins"] and "confidence" in d["bins"][0]:
        out.append(
            reliability_figure(
                d["bins"], result.estimates["ece"].format(3) if "ece" in result.estimates else ""
            )
        )
    if "ratings" in d:
        out.append(elo_figure(d["ratings"]))
    if d.get("length_curve"):
        out.append(length_figure(d["length_curve"]))
    if "d" in d and "gold" in d:
        out.append(overopt_figure(d))
    return out


def write_eval_report(
    path: str | Path, title: str, results: Mapping[str, MetricResult], notes: list[str] | None = None
) -> Path:
    """Write the report: per metric a table of estimates (value, SE, 95% interval, n) and its figures."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        "<p>Every figure has its standard error or its 95% bootstrap interval; two systems differ only where "
        "the interval of their difference excludes zero.</p>",
    ]
    for name, result in results.items():
        rows = []
        for key, est in result.estimates.items():
            lo, hi = est.interval
            rows.append(
                [key, est.value, "" if est.se is None else est.se, f"[{lo:.4g}, {hi:.4g}]", est.n or ""]
            )
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(table_html(rows, ["figure", "value", "SE", "95% interval", "n"]))
        parts.extend(figures_for(name, result))
        for note in result.notes:
            parts.append(f"<p class='note'>note: {html.escape(note)}</p>")
    for note in notes or []:
        parts.append(f"<p class='note'>note: {html.escape(note)}</p>")
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path
