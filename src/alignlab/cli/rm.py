"""``alignlab rm eval``: accuracy (overall, by subset), calibration and reward distribution of a reward model."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Reward models: evaluate them on preference data.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _root() -> None:
    """Reward-model tools."""


@app.command("eval")
def eval_command(
    model: Path = typer.Option(
        ..., "--model", help="Run directory (or its model/ folder) of a trained reward model."
    ),
    data: str = typer.Option(..., "--data", help="Preference data: a file, a datasets folder or a hub id."),
    format: str = typer.Option("auto", "--format", help="Data format (auto, alignlab, hh-rlhf, trl, ...)."),
    split: str | None = typer.Option(None, "--split", help="Split of a datasets folder or hub id."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N records."),
    sections: Path | None = typer.Option(
        None, "--sections", help="JSON {section: [subset, ...]}: RewardBench-style section scores."
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the reliability diagram + reward histogram PNG here."
    ),
    batch_size: int = typer.Option(16, "--batch-size"),
    on_error: str = typer.Option(
        "raise",
        "--on-error",
        help="raise: stop at the first bad row; skip: leave bad rows out and list them.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Evaluate MODEL on the pairs of DATA: accuracy (ties = ½), per-subset accuracy, ECE, rewards."""
    from alignlab.config import ConfigError  # a user error: the CLI prints it and exits 1
    from alignlab.data.io import load_records
    from alignlab.eval.rm_metrics import evaluate_judge, plot_reliability
    from alignlab.judges.reward_model import load_judge

    if data.startswith("builtin:"):
        from alignlab.data.builtin import builtin_records

        records, notes = builtin_records(data.split(":", 1)[1]), []
    else:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"--on-error must be raise or skip, got '{on_error}'")
        # Bad rows stop the evaluation by default: silently dropping them would change the accuracy.
        records, report = load_records(data, format=format, split=split, on_error=on_error)
        notes = [report.summary()] if report.skipped else []
    if limit:
        records = records[:limit]
    mapping = None
    if sections:
        try:
            mapping = json.loads(sections.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"--sections {sections} is not JSON ({err}); "
                "write an object mapping each section to a list of subsets"
            ) from None
    judge = load_judge(model, batch_size=batch_size)
    result = evaluate_judge(judge, records, mapping)
    if plot is None and not as_json:
        plot = Path(model) / "report" / "rm_eval.png"
    if plot is not None:
        plot_reliability(result, plot)
    if as_json:
        out = result.to_dict()
        out["data"], out["model"] = str(data), str(model)
        if plot is not None:
            out["plot"] = str(plot)
        if notes:
            out["notes"] = notes
        print(json.dumps(out, indent=2))
        return
    console = Console()
    table = Table(title=f"reward model {model} on {data}", show_header=False)
    table.add_row("pairs", str(result.n))
    table.add_row("accuracy", f"{result.accuracy:.4f}")
    table.add_row("ECE", f"{result.ece:.4f}")
    for name, v in result.subsets.items():
        table.add_row(f"  {name}", f"{v['accuracy']:.4f} (n={v['n']})")
    for name, v in result.sections.items():
        table.add_row(f"section {name}", f"{v:.4f}")
    if result.score is not None:
        table.add_row("score (mean of sections)", f"{result.score:.4f}")
    for name, v in result.rewards.items():
        table.add_row(f"reward {name}", f"mean {v['mean']:.3f} ± {v['std']:.3f}")
    table.add_row("plot", str(plot))
    console.print(table)
    for line in notes:
        console.print(f"note: {line}")


if __name__ == "__main__":
    app()
