"""The data tools of ``alignlab data``: tools, label, select, synthesize, trees, route (mounted on the
``data`` group by :mod:`alignlab.cli.data`).

Each prints how many records went in and came out and every record it could not use (file:line, counted
by reason), writes its output atomically with a provenance sidecar (``OUT.provenance.json``), and with
``--strict`` exits 1 when anything was rejected or skipped (the output is still written)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

STRICT_HELP = "exit 1 when any record or row was rejected or skipped (the output is still written)"
SKIP_HELP = "skip unreadable rows (listed) instead of stopping at the first"


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _judge_spec(text: str | None) -> Any:
    if text is None:
        return None
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            _fail(f"--judge: not valid JSON ({err}); give a judge name or a JSON mapping with 'name'")
    return text


def _build_judge(text: str | None) -> tuple[Any, Any]:
    spec = _judge_spec(text)
    if spec is None:
        return None, None
    from alignlab.judges.build import build_judge
    from alignlab.judges.registry import JudgeConfigError

    try:
        return build_judge(spec, "--judge"), spec
    except JudgeConfigError as err:
        _fail(str(err))
    return None, None


def _finish(report: Any, out: Any, strict: bool) -> None:
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"wrote {report.records_out} records to {out} (provenance: {out}.provenance.json)")
    if strict and report.problems:
        typer.echo(f"--strict: {report.problems} records or rows were rejected or skipped", err=True)
        raise typer.Exit(1)


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a tool, turning user errors into one line and exit 1."""
    from alignlab.data.records import RecordError
    from alignlab.data.resumable import ResumeError

    try:
        return fn(*args, **kwargs)
    except (RecordError, ResumeError, ValueError, OSError) as err:
        _fail(str(err))
    except RuntimeError as err:
        if type(err).__name__ in ("AppError", "HumanJudgeError"):
            _fail(str(err))
        raise


def tools(as_json: bool = typer.Option(False, "--json", help="print the list as JSON")) -> None:
    """List every data tool (METHODS.md family L) with its kind, paper and test."""
    import alignlab.recipes.curation.label  # noqa: F401  (registers the judge-backed tools)
    from alignlab.data.tools import all_tools

    specs = all_tools()
    if as_json:
        typer.echo(json.dumps([s.describe() for s in specs], indent=1))
        return
    for s in specs:
        typer.echo(f"{s.kind:11s} {s.name:28s} {s.paper}")


def label(
    source: str = typer.Argument(..., metavar="IN"),
    out: Path = typer.Argument(..., metavar="OUT"),
    judge: str | None = typer.Option(
        None, "--judge", help='a judge name or JSON spec, e.g. \'{"name": "rlaif", "path": "tiny:llama"}\''
    ),
    mode: str = typer.Option("pairs", "--mode", help="pairs (both orders, averaged), scores, or jury"),
    jury: list[str] = typer.Option(
        [], "--jury", help="jury mode (aegis_jury): one judge spec per juror (repeat)"
    ),
    vote_threshold: float = typer.Option(
        0.5, "--vote-threshold", help="jury: score >= this votes acceptable"
    ),
    escalate_out: Path | None = typer.Option(
        None, "--escalate-out", help="jury: write the records it split on"
    ),
    principle: list[str] = typer.Option(
        [], "--principle", help="SALMON: put these principles in front of each prompt"
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    resume: bool = typer.Option(False, "--resume", help="continue a killed run (same input and options)"),
    format: str = typer.Option("auto", "--format", "-f"),
    to_format: str = typer.Option("alignlab", "--to"),
    split: str | None = typer.Option(None, "--split"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=SKIP_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
) -> None:
    """Label IN with AI judges (pairs: position-swapped and averaged; scores; jury: majority of several,
    splits escalated). Resumable."""
    from alignlab.recipes.curation.label import label_file

    if mode == "jury":
        if not jury:
            _fail("--mode jury needs --jury SPEC for each juror")
        jurors = [_build_judge(j) for j in jury]
        built, spec = [b for b, _ in jurors], [s for _, s in jurors]
    else:
        if judge is None:
            _fail(f"--mode {mode} needs --judge")
        built, spec = _build_judge(judge)
    report = _run(
        label_file, source, out, built, spec, mode, format, to_format, split, skip_bad, batch_size, resume,
        principle, vote_threshold, escalate_out,
    )  # fmt: skip
    _finish(report, out, strict)


def select(
    source: str = typer.Argument(..., metavar="IN"),
    out: Path = typer.Argument(..., metavar="OUT"),
    method: str = typer.Option(
        ..., "--method", help="deita, zip_fit, got_d_selection, ches_filter or clear_curation"
    ),
    budget: float | None = typer.Option(
        None, "--budget", help="records to keep: a count, or a fraction such as 0.5"
    ),
    target: str | None = typer.Option(
        None, "--target", help="zip_fit / got_d_selection: examples of the target domain"
    ),
    encoder: str = typer.Option(
        "hashed", "--encoder", help="embeddings: hashed (no model), tiny:ARCH, a folder or hub id"
    ),
    complexity: str | None = typer.Option(
        None, "--complexity", help="deita: the rating name holding complexity"
    ),
    quality: str | None = typer.Option(None, "--quality", help="deita: the rating name holding quality"),
    complexity_scorer: str | None = typer.Option(
        None, "--complexity-scorer", help="deita: a complexity scorer model (hub id, folder, tiny:ARCH)"
    ),
    quality_scorer: str | None = typer.Option(
        None, "--quality-scorer", help="deita: a quality scorer model (hub id, folder, tiny:ARCH)"
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="deita: cosine threshold (0.9); clear: confidence (0.5)"
    ),
    q: float = typer.Option(0.05, "--q", help="ches_filter: fraction of highest-CHES pairs removed"),
    values_from: str | None = typer.Option(
        None, "--values-from", help="ches/clear: read the values from extras.NAME"
    ),
    judge: str | None = typer.Option(None, "--judge", help="clear_curation: the AI judge giving confidences"),
    ches_model: str | None = typer.Option(
        None, "--ches-model", help="ches_filter: the model whose hidden states count"
    ),
    correct: bool = typer.Option(False, "--correct", help="clear_curation: flip confidently reversed pairs"),
    epsilon: float = typer.Option(
        0.1, "--epsilon", help="got_d_selection: entropic OT regularisation, in units of the cost"
    ),
    ot_cost: str = typer.Option(
        "sqeuclidean", "--ot-cost", help="got_d_selection: sqeuclidean (the paper's code) or cosine"
    ),
    format: str = typer.Option("auto", "--format", "-f"),
    to_format: str = typer.Option("alignlab", "--to"),
    split: str | None = typer.Option(None, "--split"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=SKIP_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
) -> None:
    """Keep the records that matter: METHOD with a budget (or a filter threshold), written to OUT."""
    from alignlab.recipes.curation.select import select_file

    built, spec = _build_judge(judge)
    if budget is not None and budget >= 1 and budget == int(budget):
        budget = int(budget)
    report = _run(
        select_file,
        source,
        out,
        method,
        budget,
        target,
        encoder,
        complexity,
        quality,
        threshold,
        q,
        values_from,
        built,
        spec,
        ches_model,
        correct,
        format,
        to_format,
        split,
        skip_bad,
        epsilon=epsilon,
        ot_cost=ot_cost,
        complexity_scorer=complexity_scorer,
        quality_scorer=quality_scorer,
    )
    _finish(report, out, strict)


def synthesize(
    out: Path = typer.Argument(..., metavar="OUT"),
    method: str = typer.Option(
        ..., "--method", help="magpie, codeclm, ensemble_instruct, multifaceted_sysmsg, constitutional_ai"
    ),
    model: str = typer.Option(..., "--model", help="the generating model: a folder, hub id or tiny:ARCH"),
    source: str | None = typer.Option(
        None, "--input", help="instructions / prompt-response records (all but magpie)"
    ),
    count: int = typer.Option(32, "--count", min=1, help="magpie: queries to sample"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0),
    seed: int = typer.Option(0, "--seed"),
    rounds: int = typer.Option(
        1, "--rounds", min=0, help="constitutional_ai: critique-revision rounds; codeclm: rubric rounds"
    ),
    per_instruction: int = typer.Option(
        2, "--per-instruction", min=1, help="multifaceted_sysmsg: system messages each"
    ),
    models: list[str] = typer.Option(
        [], "--ensemble-model", help="ensemble_instruct: the other models (repeat)"
    ),
    strong_model: str | None = typer.Option(None, "--strong-model", help="codeclm: the strong model"),
    judge: str | None = typer.Option(None, "--judge", help="codeclm: the judge scoring responses"),
    threshold: float | None = typer.Option(
        None, "--threshold", help="codeclm: score gap (0); ensemble_instruct: Rouge-L (0.5)"
    ),
    resume: bool = typer.Option(False, "--resume", help="continue a killed run (same options)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=SKIP_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
) -> None:
    """Synthesise instruction data with METHOD on MODEL into OUT. Resumable batch by batch."""
    from alignlab.recipes.curation.synth import synthesize_file

    built, spec = _build_judge(judge)
    report = _run(
        synthesize_file,
        out,
        method,
        model,
        source,
        count,
        batch_size,
        resume,
        max_new_tokens,
        temperature,
        seed,
        rounds,
        per_instruction,
        models,
        strong_model,
        built,
        spec,
        threshold,
        skip_bad,
    )
    _finish(report, out, strict)


def trees(
    source: str = typer.Argument(..., metavar="IN"),
    out: Path = typer.Argument(..., metavar="OUT"),
    method: str = typer.Option("oasst_trees", "--method", help="oasst_trees or ultrainteract_trees"),
    mode: str = typer.Option("paths", "--mode", help="oasst_trees: paths, best or pairs"),
    lang: str | None = typer.Option(None, "--lang", help="oasst_trees: keep only this language"),
    split: str | None = typer.Option(None, "--split"),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
) -> None:
    """Conversations or preference pairs from OpenAssistant or UltraInteract trees."""
    from alignlab.data.io import LoadReport, iter_rows, write_records
    from alignlab.data.provenance import write_sidecar
    from alignlab.data.records import RecordError
    from alignlab.data.trees import oasst_trees, ultrainteract_trees

    if method not in ("oasst_trees", "ultrainteract_trees"):
        _fail(f"unknown tree method {method!r}; choose oasst_trees or ultrainteract_trees")
    load = LoadReport(source)
    unreadable: list[RecordError] = []

    def rows() -> Any:
        for where, row in iter_rows(source, split, load):
            if isinstance(row, RecordError):
                unreadable.append(row)
            else:
                yield where, row

    if method == "oasst_trees":
        result = _run(oasst_trees, rows(), mode, lang)
    else:
        result = _run(ultrainteract_trees, rows())
    result.errors = unreadable + result.errors
    _run(write_records, result.records, out)
    typer.echo(f"{source}: {load.rows} rows")
    typer.echo(result.summary(method))
    for err in result.errors[:20]:
        typer.echo(f"  rejected {err}")
    counts = {
        "rows": load.rows,
        "trees": result.trees,
        "out": len(result.records),
        "bad_rows": len(result.errors),
        "left_out": dict(result.dropped),
    }
    write_sidecar(out, "alignlab data trees", method, {"mode": mode, "lang": lang}, [source], {}, counts)
    typer.echo(f"wrote {len(result.records)} records to {out} (provenance: {out}.provenance.json)")
    if strict and (result.errors or result.dropped):
        typer.echo(
            f"--strict: {len(result.errors)} bad rows, {sum(result.dropped.values())} left out", err=True
        )
        raise typer.Exit(1)


def route(
    source: str = typer.Argument(..., metavar="IN"),
    budget: int = typer.Option(
        ..., "--budget", min=0, help="human labels to spend (exactly this many records)"
    ),
    judge: str = typer.Option(
        ..., "--judge", help="the AI judge for the rest (and for the uncertainty gain)"
    ),
    ai_out: Path = typer.Option(..., "--ai-out", help="where the AI-labelled records go"),
    app_url: str | None = typer.Option(None, "--app", help="the feedback app, e.g. http://127.0.0.1:8000"),
    token: str | None = typer.Option(None, "--token", help="an admin token (default: $ALIGNLAB_APP_TOKEN)"),
    project: str = typer.Option("routed", "--project", help="name of the app project to create"),
    per_task: int = typer.Option(1, "--per-task", min=1, help="annotators per record in the app"),
    human_out: Path | None = typer.Option(None, "--human-out", help="also write the records sent to people"),
    gain_from: str | None = typer.Option(
        None, "--gain-from", help="route by extras.NAME instead of AI uncertainty"
    ),
    performance_model: str | None = typer.Option(
        None, "--performance-model", help="route by a HyPER performance prediction model (JSON)"
    ),
    feature_meta: list[str] = typer.Option(
        [], "--feature-meta", help="meta tags the performance model's features use (repeat)"
    ),
    format: str = typer.Option("auto", "--format", "-f"),
    split: str | None = typer.Option(None, "--split"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help=SKIP_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
) -> None:
    """Send exactly BUDGET records to people (a new project in the feedback app), label the rest with AI."""
    from alignlab.recipes.curation.route import route_file

    built, spec = _build_judge(judge)
    token = token or os.environ.get("ALIGNLAB_APP_TOKEN")
    report = _run(
        route_file,
        source,
        budget,
        built,
        spec,
        ai_out,
        app_url,
        token,
        project,
        human_out,
        gain_from,
        per_task,
        format,
        split,
        skip_bad,
        performance_model=performance_model,
        feature_meta=tuple(feature_meta),
    )
    extra = report.extra
    typer.echo(
        f"sent {extra['to_people']} records to people (app project {project!r}), {extra['to_ai']} to the AI judge"
    )
    _finish(report, ai_out, strict)
