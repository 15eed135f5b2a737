"""What every external format module shares: the row stream, the outcome types and small helpers.

A format turns rows (plain dicts, each with a ``where`` naming its file and line or row) into
:class:`~alignlab.data.records.Record` objects. Converters never raise on a bad row: they yield a
:class:`~alignlab.data.records.RecordError` in its place, and a :class:`Dropped` for input that is
deliberately not turned into a record (e.g. an unranked OpenAssistant reply), so the reader can stop at
the first error or skip and count every one of them. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from alignlab.data.records import Record, RecordError

Row = dict[str, Any]
WhereRow = tuple[str, Row]


@dataclass
class Dropped:
    """Input deliberately left out of the records, with the reason (counted in the load report)."""

    where: str
    reason: str


@dataclass
class Note:
    """Something the reader did that the user should know (e.g. an old layout moved), for the load report."""

    text: str


Outcome = Union[Record, RecordError, Dropped, Note]


@dataclass
class Format:
    """An external data layout: how to recognise it, read it and (optionally) write it."""

    name: str
    description: str
    detect: Callable[[Sequence[Row]], bool]
    to_records: Callable[[Iterable[WhereRow]], Iterator[Outcome]]
    from_records: Callable[[Sequence[Record]], list[Row]] | None = None
    columns: tuple[str, ...] = field(default_factory=tuple)  # the columns that identify it (for messages)


def checked(record: Record, where: str) -> Record | RecordError:
    """The record if it validates, else the error (naming ``where``)."""
    try:
        record.validate(where)
    except RecordError as err:
        return err
    return record


def need(row: Row, name: str, where: str, fix: str, kind: type | tuple[type, ...] = str) -> Any:
    """``row[name]``, raising a RecordError that names the field and the fix when missing or mistyped."""
    if name not in row or row[name] is None:
        raise RecordError(f"missing field '{name}'", where, fix)
    value = row[name]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RecordError(f"field '{name}' must be {names}, got {type(value).__name__}", where, fix)
    return value


def has_columns(rows: Sequence[Row], *names: str) -> bool:
    return bool(rows) and all(all(n in row for n in names) for row in rows)


def per_row(convert: Callable[[Row, str], Record]) -> Callable[[Iterable[WhereRow]], Iterator[Outcome]]:
    """Lift a one-row-to-one-record function into a stream converter that yields errors, never raises."""

    def run(rows: Iterable[WhereRow]) -> Iterator[Outcome]:
        for where, row in rows:
            try:
                record = convert(row, where)
            except RecordError as err:
                yield err
                continue
            yield checked(record, where)

    return run


def writer_error(i: int, record: Record, message: str, fix: str) -> RecordError:
    name = f"record {i}" + (f" (id {record.id})" if record.id is not None else "")
    return RecordError(message, name, fix)


def pair_indices(record: Record, i: int, fmt: str) -> tuple[int, int]:
    """(chosen, rejected) of a K = 2 record with a strict ranking, else an error telling how to convert."""
    if record.ranking is None or record.k != 2:
        kind = f"K = {record.k}" + ("" if record.ranking is not None else " without a ranking")
        raise writer_error(
            i,
            record,
            f"{fmt} holds pairs (K = 2 with a ranking); this record has {kind}",
            "convert first, e.g. --convert ranking_to_pairs or --convert ratings_to_pairs",
        )
    a, b = record.ranking
    if a == b:
        raise writer_error(i, record, f"{fmt} cannot hold a tie", "drop tied pairs (ranking_to_pairs does)")
    return (0, 1) if a < b else (1, 0)


def chat(prompt: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A prompt as chat messages (a text prompt becomes one user turn)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]
