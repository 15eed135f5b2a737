"""Matplotlib plots for reports (Agg backend: no display needed); each returns the PNG's path."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def method_bars(
    path: Path,
    gold: Mapping[str, float],
    attributes: Mapping[str, Mapping[str, float]],
    errors: Mapping[str, float] | None = None,
) -> Path:
    """Gold reward per method (left; with ``errors``, each bar's ± 1 standard error) and attribute means
    per policy (right)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    yerr = [errors[name] for name in gold] if errors else None
    colours = ["#888", "#2a7", "#27c", "#c72"][: len(gold)]
    left.bar(list(gold), list(gold.values()), color=colours, yerr=yerr, capsize=6 if yerr else 0)
    left.set_ylabel("mean gold reward" + (" (± 1 standard error)" if yerr else ""))
    left.set_title("gold reward on held-out prompts")
    names = [n for n in next(iter(attributes.values())) if n != "words"]
    width = 0.8 / max(1, len(attributes))
    for i, (policy, values) in enumerate(attributes.items()):
        right.bar([j + i * width for j in range(len(names))], [values[n] for n in names], width, label=policy)
    right.set_xticks([j + width * (len(attributes) - 1) / 2 for j in range(len(names))], names)
    right.set_title("attributes (means)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def overoptimisation(path: Path, curve: Mapping[str, Sequence[float]], title: str = "best-of-n") -> Path:
    """Gold and proxy reward against KL (left) and gold against proxy (right)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    if curve.get("gold_se"):  # ± 1 standard error over prompts, where the curve carries it
        left.errorbar(
            curve["kl"], curve["gold"], yerr=curve["gold_se"], fmt="o-", capsize=4, label="gold reward ± 1 SE"
        )
    else:
        left.plot(curve["kl"], curve["gold"], "o-", label="gold reward")
    left.plot(curve["kl"], curve["proxy"], "s--", label="proxy reward")
    for x, y, n in zip(curve["kl"], curve["gold"], curve["n"]):
        left.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(3, 4), fontsize=8)
    left.set_xlabel("KL(best-of-n ‖ policy) = log n − (n−1)/n")
    left.set_ylabel("reward")
    left.set_title(title)
    left.legend()
    right.plot(curve["proxy"], curve["gold"], "o-")
    right.set_xlabel("proxy reward")
    right.set_ylabel("gold reward")
    right.set_title("gold against proxy")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def training_curves(
    path: Path, runs: Mapping[str, Path], reference_lines: Mapping[str, tuple[float, str]] | None = None
) -> Path:
    """The loss of each run's metrics.jsonl against its step; ``reference_lines[run] = (y, label)`` draws a
    dashed horizontal line on that run's panel (e.g. ln 2, the chance level of a pairwise logistic loss)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.2), squeeze=False)
    for ax, (name, metrics_path) in zip(axes[0], runs.items()):
        steps, losses = [], []
        if Path(metrics_path).exists():
            for line in Path(metrics_path).read_text().splitlines():
                row = json.loads(line)
                if "loss" in row:
                    steps.append(row["step"])
                    losses.append(row["loss"])
        ax.plot(steps, losses)
        if reference_lines and name in reference_lines:
            y, label = reference_lines[name]
            ax.axhline(y, color="#888", linestyle="--", linewidth=1, label=label)
            ax.legend(fontsize=8)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def league(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Gold reward against KL to the reference, one labelled point per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        ax.scatter(row["kl"], row["gold_reward"])
        ax.annotate(
            row["objective"],
            (row["kl"], row["gold_reward"]),
            textcoords="offset points",
            xytext=(4, 3),
            fontsize=8,
        )
    ax.set_xlabel("KL(π ‖ SFT) from samples (nats per sequence)")
    ax.set_ylabel("mean gold reward")
    ax.set_title("objectives on the same world, data and budget")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
