"""``alignlab eval``: every registered metric (``alignlab eval list``) over policies, judges, feedback and runs.

    alignlab eval list                                   # the registry: name, inputs, paper
    alignlab eval compute winrate --input verdicts.jsonl # any metric on a JSONL table of its inputs
    alignlab eval judge --model runs/rm --data pairs.jsonl   # reward model / judge on labelled pairs (= rm eval)
    alignlab eval judge --judge '{name: rlaif, path: builtin:smollm2-135m-instruct}' --data pairs.jsonl
    alignlab eval policies --model A --baseline B --prompts FILE --judge SPEC
    alignlab eval feedback --data pairs.jsonl            # separability, wimhf, rating/ranking consistency
    alignlab eval run runs/my-dpo --prompts FILE --gold SPEC --proxy SPEC   # over-optimisation curves
    alignlab eval model --model runs/my-dpo --base runs/sft --prompts FILE --data pairs.jsonl --metric ches,...
    alignlab eval arena --outputs a=A.jsonl --outputs b=B.jsonl --outputs c=C.jsonl --judge SPEC
    alignlab eval just-eval --outputs A.jsonl --judge-model MODEL      # Just-Eval 1-5 scores from a judge model
    alignlab eval humans --url URL --project ID --model A.jsonl --baseline B.jsonl  # people vote in the app

Every figure printed carries its standard error or bootstrap interval; ``--json`` prints one JSON object and
``--report FILE.html`` writes one self-contained HTML page with the plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from alignlab.cli import eval_just, eval_policies, eval_sources
from alignlab.cli.eval_options import judge_option
from alignlab.cli.eval_output import console, emit, parse_options

app = typer.Typer(
    help="Evaluate policies, reward models, feedback data and training runs (every figure with its uncertainty).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Evaluation and diagnostics."""


@app.command("list")
def list_metrics(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")) -> None:
    """List every registered metric with what it reads and its paper."""
    from alignlab.eval.registry import all_metrics

    specs = all_metrics()
    if as_json:
        print(json.dumps([s.describe() for s in specs], indent=2, default=str))
        return
    table = Table(title=f"{len(specs)} metrics")
    for column in ("name", "inputs", "paper", "summary"):
        table.add_column(column, overflow="fold")
    for s in specs:
        table.add_row(s.name, s.inputs, s.paper, s.summary)
    console.print(table)


@app.command("compute")
def compute(
    metric: str = typer.Argument(..., help="A registered metric (alignlab eval list)."),
    input: Path = typer.Option(
        ..., "--input", help="JSONL: one row per unit, a field per input (e.g. verdict)."
    ),
    option: list[str] = typer.Option([], "--option", help="A metric option: --option rounds=200"),
    on_invalid: str = typer.Option(
        "raise", "--on-invalid", help="raise: stop at bad values; skip: leave them out and count them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(
        None, "--report", help="Also write a self-contained HTML report here."
    ),
) -> None:
    """Run METRIC on the columns of a JSONL table (field = the metric's input name or its singular)."""
    from alignlab.eval.registry import get_metric, run_metric
    from alignlab.eval.tables import read_columns

    spec = get_metric(metric)
    kwargs = read_columns(input, spec)
    kwargs.update(parse_options(option))
    if "on_invalid" in spec.parameters:
        kwargs.setdefault("on_invalid", on_invalid)
    result = run_metric(metric, **kwargs)
    results = {metric: result}
    emit(results, [], as_json, report, title=f"{metric} on {input}")


@app.command("judge")
def judge_command(
    model: Path | None = typer.Option(
        None, "--model", help="Run directory (or its model/ folder) of a trained reward model."
    ),
    judge_text: str | None = typer.Option(
        None,
        "--judge",
        help="Instead of --model, any judge spec (a name or YAML), e.g. "
        "'{name: rlaif, path: builtin:smollm2-135m-instruct}' or "
        "'{name: implicit_reward, path: runs/my-dpo}'; a judge without scores is asked in both orders.",
    ),
    data: str = typer.Option(..., "--data", help="Preference data: a file, a datasets folder or a hub id."),
    format: str = typer.Option("auto", "--format", help="Data format (auto, alignlab, hh-rlhf, trl, ...)."),
    split: str | None = typer.Option(None, "--split", help="Split of a datasets folder or hub id."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N records."),
    sections: Path | None = typer.Option(
        None,
        "--sections",
        help="JSON object mapping each section to its list of subsets: RewardBench-style section scores.",
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the reliability diagram + reward histogram PNG here."
    ),
    batch_size: int = typer.Option(16, "--batch-size"),
    on_error: str = typer.Option(
        "raise", "--on-error", help="Bad rows: raise (stop) or skip (leave out and list them)."
    ),
    on_invalid: str = typer.Option(
        "raise", "--on-invalid", help="NaN/invalid scores: raise or skip (counted)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Evaluate a reward model or judge on labelled pairs: accuracy ± SE, ECE with its bootstrap interval, accuracy where the chosen answer is the shorter / the longer, RewardBench sections, rewards."""
    from alignlab.config import ConfigError
    from alignlab.data.io import load_records, switch_hint
    from alignlab.eval.judge_eval import evaluate_pairs
    from alignlab.eval.registry import MetricError
    from alignlab.eval.rm_metrics import plot_reliability
    from alignlab.judges.reward_model import load_judge

    if (model is None) == (judge_text is None):
        raise ConfigError(
            "give the judge to evaluate: --model RUN (a trained reward model) or --judge SPEC (any judge), not "
            + ("both" if model is not None else "neither")
        )
    if data.startswith("builtin:"):
        from alignlab.data.builtin import builtin_records

        records, notes = builtin_records(data.split(":", 1)[1]), []
    else:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"--on-error must be raise or skip, got '{on_error}'")
        records, loaded = load_records(
            data, format=format, split=split, on_error=on_error, skip_hint=switch_hint("--on-error skip")
        )
        notes = [loaded.summary()] if loaded.skipped else []
    if limit:
        records = records[:limit]
    mapping = None
    if sections:
        try:
            mapping = json.loads(sections.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"--sections {sections} is not JSON ({err}); write an object mapping each section to a list of subsets"
            ) from None
    if model is not None:
        judge, name = load_judge(model, batch_size=batch_size), f"reward model {model}"
    else:
        judge, name = judge_option(judge_text), f"judge {judge_text}"
    try:
        result, metrics, more = evaluate_pairs(judge, records, mapping, on_invalid=on_invalid)
    except MetricError as err:
        raise ConfigError(str(err)) from None
    notes += more
    if plot is None and not as_json and model is not None:
        plot = Path(model) / "report" / "rm_eval.png"
    if plot is not None:
        plot_reliability(result, plot)
    if as_json:
        out = result.to_dict()
        out["data"] = str(data)
        out["model" if model is not None else "judge"] = str(model if model is not None else judge_text)
        if plot is not None:
            out["plot"] = str(plot)
        if notes:
            out["notes"] = notes
        out["metrics"] = {k: v.to_dict() for k, v in metrics.items()}
        if report is not None:
            from alignlab.eval.html_report import write_eval_report

            write_eval_report(report, f"{name} on {data}", metrics, notes)
            out["report"] = str(report)
        print(json.dumps(out, indent=2, default=str))
        return
    emit(metrics, notes, False, report, title=f"{name} on {data} ({result.n} pairs)")
    for side, v in result.rewards.items():
        console.print(f"reward {side}: mean {v['mean']:.3f}, std {v['std']:.3f}")
    if plot is not None:
        console.print(f"plot: {plot}")


# The subcommands that gather their own evidence live in eval_policies and eval_sources; mounted here.
for _name in ("policies", "humans"):
    app.command(_name)(getattr(eval_policies, _name))
for _name in ("feedback", "run", "model", "arena"):
    app.command(_name)(getattr(eval_sources, _name))
app.command("just-eval")(eval_just.just_eval)
