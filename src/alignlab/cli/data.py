"""``alignlab data ...``: validate and convert feedback data files.

    alignlab data validate FILE... [--format F] [--split S] [--json] [--warn-only]
    alignlab data convert IN OUT --from F --to G [--convert NAME[:key=value,...]]... [--split S] [--skip-bad] [--strict]
    alignlab data tools | label | select | synthesize | trees | route   (alignlab.cli.data_tools)

User errors (a missing file, an unknown format, a bad row when converting without --skip-bad) print one
clear line and exit with code 1, without a traceback; ``validate`` exits 1 when it finds any problem
(``--warn-only``: report and exit 0).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer

from alignlab.cli import data_tools
from alignlab.data.conversions import parse_spec
from alignlab.data.formats import FORMATS
from alignlab.data.io import LoadReport, iter_records, switch_hint, write_records
from alignlab.data.provenance import write_sidecar
from alignlab.data.records import Record, RecordError
from alignlab.data.stream import check_conversion, convert_stream
from alignlab.data.validate import validate_file

app = typer.Typer(
    help="Validate, convert, label, select, synthesize and route feedback data.",
    no_args_is_help=True,
    add_completion=False,
)
FORMAT_HELP = "auto, or one of: " + ", ".join(FORMATS)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def validate(
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="JSONL/JSON/Parquet files, saved `datasets` folders or Hub ids"
    ),
    format: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    split: str | None = typer.Option(None, "--split", help="split of a `datasets` dataset"),
    as_json: bool = typer.Option(
        False, "--json", help="print the report as JSON (a list of reports for several files)"
    ),
    warn_only: bool = typer.Option(
        False, "--warn-only", help="report problems but exit 0 (the exit status is 1 when any is found)"
    ),
) -> None:
    """Print counts (records, feedback kinds, K, prompts, lengths) and every problem with line and fix.

    Exits 1 when any file has a problem (so scripts can stop on bad data), 0 otherwise or with --warn-only.
    """
    if format != "auto" and format not in FORMATS:
        _fail(f"unknown format {format!r}; use {FORMAT_HELP}")
    reports = [validate_file(file, format, split) for file in files]
    if as_json:
        dicts = [r.to_dict() for r in reports]
        typer.echo(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=1, ensure_ascii=False))
    else:
        typer.echo("\n\n".join(r.render() for r in reports))
    bad = sum(not r.ok for r in reports)
    if bad and not warn_only:
        if len(reports) > 1:
            typer.echo(f"{bad} of {len(reports)} files have problems", err=True)
        raise typer.Exit(1)


@dataclass
class _Stage:
    """A step of a streamed conversion: how many records came out, and what it left out by reason."""

    name: str
    count: int = 0
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = f"{self.name}: {self.count} records"
        if self.dropped:
            text += "; left out:" + "".join(f"\n  {n} x {why}" for why, n in self.dropped.most_common())
        return text


def _counted(stream: Iterator[Record], stage: _Stage) -> Iterator[Record]:
    for record in stream:
        stage.count += 1
        yield record


@app.command()
def convert(
    source: str = typer.Argument(..., metavar="IN", help="input file, `datasets` folder or Hub id"),
    target: Path = typer.Argument(
        ..., metavar="OUT", help="output: .jsonl, .jsonl.gz, .json, .parquet or a folder"
    ),
    from_format: str = typer.Option("auto", "--from", help=FORMAT_HELP),
    to_format: str = typer.Option(
        "alignlab", "--to", help="one of: " + ", ".join(n for n, f in FORMATS.items() if f.from_records)
    ),
    conversions: list[str] = typer.Option(
        [], "--convert", help="e.g. ratings_to_pairs:strategy=best_vs_worst,min_margin=1 (repeatable)"
    ),
    split: str | None = typer.Option(None, "--split", help="split of a `datasets` dataset"),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="skip bad rows (listed) instead of stopping at the first"
    ),
    strict: bool = typer.Option(False, "--strict", help=data_tools.STRICT_HELP),
) -> None:
    """Read IN in one format, optionally convert the feedback, and write OUT in another format."""
    for name in (from_format, to_format):
        if name != "auto" and name not in FORMATS:
            _fail(f"unknown format {name!r}; use {FORMAT_HELP}")
    load = LoadReport(source)
    stages: list[_Stage] = []
    out = _Stage("written")
    try:
        specs = [parse_spec(s) for s in conversions]
        for name, options in specs:
            check_conversion(name, options)
        records = iter_records(
            source,
            from_format,
            split,
            "skip" if skip_bad else "raise",
            load,
            skip_hint=switch_hint("--skip-bad"),
        )
        for name, options in specs:
            stages.append(_Stage(name))
            records = _counted(convert_stream(records, name, stages[-1].dropped, **options), stages[-1])
        write_records(_counted(records, out), target, to_format)
    except RecordError as err:
        _fail(f"{err}" + ("" if skip_bad else "\n  (`alignlab data validate` lists every problem)"))
    except ValueError as err:
        _fail(str(err))
    typer.echo(load.summary())
    for problem in load.errors:
        typer.echo(f"  skipped {problem}")
    for stage in stages:
        typer.echo(stage.summary())
    typer.echo(f"read {load.records} records, wrote {out.count} records to {target} ({to_format})")
    left_out = load.skipped + sum(sum(stage.dropped.values()) for stage in stages)
    write_sidecar(
        target,
        "alignlab data convert",
        ",".join(name for name, _ in specs) or "convert",
        {"from": from_format, "to": to_format, "convert": conversions, "split": split, "skip_bad": skip_bad},
        [source],
        {},
        {
            "in": load.records,
            "out": out.count,
            "rejected": load.by_reason(),
            **{stage.name: dict(stage.dropped) for stage in stages},
        },
    )
    if strict and left_out:
        typer.echo(f"--strict: {left_out} rows or records were skipped or left out", err=True)
        raise typer.Exit(1)


for _command in ("tools", "label", "select", "synthesize", "trees", "route"):
    app.command(_command)(getattr(data_tools, _command))


if __name__ == "__main__":
    app()
