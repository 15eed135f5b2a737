"""Turn the ``data`` section of a run config into tokenised groups the loop can batch."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from alignlab.data.records import Record
from alignlab.data.settings import DataSettings
from alignlab.data.tokenize import TokenizedGroup, TokenizeReport, Truncation, tokenize_records
from alignlab.train.config import ConfigError
from alignlab.train.logger import duration, phase_progress


@dataclass
class PreparedData:
    records: list[Record]
    groups: list[TokenizedGroup]
    report: TokenizeReport
    notes: list[str] = field(default_factory=list)


def read_source(source: str, settings: DataSettings) -> tuple[list[Record], list[str]]:
    """Records from ``builtin:NAME`` or any path / hub id the data readers understand."""
    if source.startswith("builtin:"):
        from alignlab.data.builtin import builtin_records

        try:
            return builtin_records(source.split(":", 1)[1]), []
        except ValueError as err:
            raise ConfigError(f"data: {err}") from None
    from alignlab.data.io import CONFIG_SKIP_HINT, load_records

    records, report = load_records(
        source,
        format=settings.format,
        split=settings.split,
        on_error=settings.on_error,
        skip_hint=CONFIG_SKIP_HINT,
    )
    return records, report.summary().splitlines()


def truncation_of(settings: DataSettings) -> Truncation:
    return settings.truncation()


def apply_conversion(records: list[Record], settings: DataSettings) -> tuple[list[Record], list[str]]:
    if not settings.convert:
        return records, []
    from alignlab.data.conversions import CONVERSIONS, convert

    if settings.convert not in CONVERSIONS:
        raise ConfigError(
            f"data.convert: unknown conversion '{settings.convert}'; choose from {sorted(CONVERSIONS)}"
        )
    try:
        converted = convert(records, settings.convert, **settings.convert_args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"data.convert_args: {err}") from None
    return list(converted.records), converted.summary().splitlines()


def prepare_records(records: list[Record], objective: Any) -> list[Record]:
    """Run the objectives' ``prepare`` hooks (critique templates, KTO's mismatched pairs, ...)."""
    for part in objective.parts:
        hook = part.spec.prepare
        if hook is not None:
            records = hook(records, **part.spec.prepare_kwargs(part.params))
    return records


def load_data(
    settings: DataSettings,
    tokenizer: Any,
    objective: Any,
    seed: int,
    progress: bool = False,
    console: Console | None = None,
) -> tuple[PreparedData, PreparedData | None]:
    """(train, eval) data: read, converted, prepared by the objectives, tokenised, with every drop reported.
    ``progress``: a progress bar per split while it is tokenised (on ``console``, default stderr)."""
    records, notes = read_source(settings.train, settings)
    if settings.limit:
        records = records[: settings.limit]
    eval_records: list[Record] | None = None
    if settings.eval:
        eval_records, eval_notes = read_source(settings.eval, settings)
        notes += [f"eval: {n}" for n in eval_notes]
    elif settings.eval_fraction > 0:
        order = list(range(len(records)))
        random.Random(seed).shuffle(order)
        cut = max(1, int(len(records) * settings.eval_fraction))
        eval_records = [records[i] for i in sorted(order[:cut])]
        records = [records[i] for i in sorted(order[cut:])]
    truncation = truncation_of(settings)

    def finish(recs: list[Record], label: str) -> PreparedData:
        recs, conv_notes = apply_conversion(recs, settings)
        recs = prepare_records(recs, objective)
        started = time.perf_counter()
        with phase_progress(f"tokenising ({label})", len(recs), progress, console) as bar:
            groups, report = tokenize_records(recs, tokenizer, truncation, progress=bar.advance)
        lines = report.lines()
        lines[0] += f" in {duration(time.perf_counter() - started)}"  # "N of M records tokenised in 1.2 s"
        return PreparedData(recs, groups, report, [f"{label}: {n}" for n in conv_notes + lines])

    train = finish(records, "train")
    train.notes = notes + train.notes
    return train, (finish(eval_records, "eval") if eval_records else None)


EVAL_PROMPTS = "eval_prompts.jsonl"
"""The run directory's held-out prompts: what ``alignlab eval policies --prompts`` reads."""


def write_eval_prompts(data: PreparedData, path: Path) -> int:
    """The distinct prompts of the held-out records, in order, one ``{"prompt": ...}`` a line (a chat prompt
    stays a list of messages). Returns how many were written."""
    seen: set[str] = set()
    lines = []
    for record in data.records:
        line = json.dumps({"prompt": record.prompt}, ensure_ascii=False)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


EVAL_RECORDS = "eval_records.jsonl"
"""The run directory's held-out records as the run evaluated them: what ``alignlab eval judge --data`` reads."""


def write_eval_records(data: PreparedData, path: Path) -> int:
    """The held-out records (after conversion and the objectives' prepare hooks) in alignlab's JSONL format,
    so a judge, or the run's own implicit reward, can be scored on exactly the run's held-out pairs."""
    from alignlab.data.record_writer import write_records

    write_records(data.records, path)
    return len(data.records)


def check_batch_fits(groups: int, batch_size: int) -> str | None:
    """Refuse training data that is empty after reading and tokenising; for a batch larger than the data,
    a note to log (each batch then holds some records more than once)."""
    if groups == 0:
        raise ConfigError(
            "data.train: no training records are left after reading and tokenising; check the data "
            "(and data.max_length, which may drop every record)"
        )
    if batch_size > groups:
        return (
            f"train.batch_size ({batch_size}) is larger than the training data ({groups} records): "
            "each batch repeats records"
        )
    return None
