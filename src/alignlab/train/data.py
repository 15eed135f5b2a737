"""Turn the ``data`` section of a run config into tokenised groups the loop can batch."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from alignlab.data.records import Record
from alignlab.data.settings import DataSettings
from alignlab.data.tokenize import TokenizedGroup, TokenizeReport, Truncation, tokenize_records
from alignlab.train.config import ConfigError


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
    settings: DataSettings, tokenizer: Any, objective: Any, seed: int
) -> tuple[PreparedData, PreparedData | None]:
    """(train, eval) data: read, converted, prepared by the objectives, tokenised, with every drop reported."""
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
        groups, report = tokenize_records(recs, tokenizer, truncation)
        lines = report.lines()
        lines[0] += f" in {time.perf_counter() - started:.1f} s"  # "N of M records tokenised in 1.2 s"
        return PreparedData(recs, groups, report, [f"{label}: {n}" for n in conv_notes + lines])

    train = finish(records, "train")
    train.notes = notes + train.notes
    return train, (finish(eval_records, "eval") if eval_records else None)


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
