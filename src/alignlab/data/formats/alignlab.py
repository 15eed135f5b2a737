"""alignlab's own layout (``alignlab``): one :class:`Record` as JSON per row (see ``records.py``).

Columnar files (Parquet, ``datasets``) cannot hold a column that is text in some rows and messages in
others, nor free-form ``meta``; the writer in ``record_writer.py`` therefore stores mixed prompts as ``prompt`` (text)
plus ``prompt_messages`` (chat) and ``meta`` as a JSON string, and fills absent optional fields with null.
:func:`decode_row` undoes all of that so every container reads back to the same records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alignlab.data.formats.base import Format, Note, Outcome, Row, WhereRow, per_row
from alignlab.data.legacy_layout import move_legacy_meta, moved_note
from alignlab.data.records import Record, RecordError
from alignlab.data.strict_json import JSONProblem, loads


def decode_row(row: Row, where: str) -> Row:
    """Undo the columnar encoding: nulls for absent fields, split prompts, JSON meta, null-padded structs."""
    out = {k: v for k, v in row.items() if v is not None}
    messages = out.pop("prompt_messages", None)
    if messages is not None and "prompt" not in out:
        out["prompt"] = messages
    if isinstance(out.get("prompt"), list):
        out["prompt"] = [_drop_nulls(m) for m in out["prompt"]]
    if isinstance(out.get("meta"), str):
        try:
            out["meta"] = loads(out["meta"])
        except JSONProblem as err:
            raise RecordError(
                f"'meta' is text but not standard JSON ({err})", where, "write meta as an object"
            ) from None
    if isinstance(out.get("scores"), list):
        out["scores"] = [_drop_nulls(s) for s in out["scores"]]  # structs are padded with the union of names
    if isinstance(out.get("spans"), list):
        out["spans"] = [
            [_drop_nulls(s) for s in per] if isinstance(per, list) else per for per in out["spans"]
        ]
    return out


def _drop_nulls(value: Any) -> Any:
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value


def _records(rows: Iterable[WhereRow]) -> Iterator[Outcome]:
    """Each row as a record; old-layout meta keys are moved (``legacy_layout.py``) and counted in a Note."""
    moved: Counter[str] = Counter()

    def row_record(row: Row, where: str) -> Record:
        return Record.from_dict(move_legacy_meta(decode_row(row, where), where, moved), where)

    yield from per_row(row_record)(rows)
    if moved:
        yield Note(moved_note(moved))


def _to_rows(records: Sequence[Record]) -> list[Row]:
    return [r.to_dict() for r in records]


def _detect(rows: Sequence[Row]) -> bool:
    if not rows or "instruction" in rows[0]:
        return False
    return all("completions" in r and ("prompt" in r or "prompt_messages" in r) for r in rows)


ALIGNLAB = Format(
    "alignlab",
    "alignlab records: prompt + completions + feedback",
    _detect,
    _records,
    _to_rows,
    ("prompt", "completions"),
)
