"""Stanford Human Preferences (``shp``): a Reddit post and two top-level comments, one preferred.

Schema read from the stanfordnlp/SHP dataset card ("Data Structure"): ``post_id``, ``domain``,
``upvote_ratio``, ``history`` (the post), ``c_root_id_A``/``c_root_id_B``, ``created_at_utc_A``/``_B``,
``score_A``/``score_B`` (upvotes), ``human_ref_A``/``human_ref_B`` (the comments), ``labels`` ("1 if A
is preferred to B; 0 if B is preferred to A"), ``seconds_difference`` and ``score_ratio``. A row becomes
a pair with the text prompt ``history`` and completions [A, B] ranked from ``labels``; the upvotes,
domain and the other columns go to ``meta`` (``meta["upvotes"] = [score_A, score_B]``).
"""

from __future__ import annotations

from collections.abc import Sequence

from alignlab.data.formats.base import Format, Row, has_columns, need, pair_indices, per_row, writer_error
from alignlab.data.records import Record, RecordError

FIX = "an SHP row is {history, human_ref_A, human_ref_B, labels: 1 (A preferred) or 0 (B preferred)}"
_MAIN = ("history", "human_ref_A", "human_ref_B", "labels", "score_A", "score_B", "post_id")


def _row(row: Row, where: str) -> Record:
    history = need(row, "history", where, FIX)
    a, b = need(row, "human_ref_A", where, FIX), need(row, "human_ref_B", where, FIX)
    label = row.get("labels")
    if isinstance(label, bool) or label not in (0, 1):
        raise RecordError(f"'labels' must be 1 (A preferred) or 0 (B preferred), got {label!r}", where, FIX)
    meta = {k: v for k, v in row.items() if k not in _MAIN and v is not None}
    if row.get("score_A") is not None and row.get("score_B") is not None:
        meta["upvotes"] = [row["score_A"], row["score_B"]]
    record = Record(
        prompt=history, completions=[a, b], ranking=[0, 1] if label == 1 else [1, 0], source="shp", meta=meta
    )
    post_id = row.get("post_id")
    if post_id is not None:
        if isinstance(post_id, bool) or not isinstance(post_id, (str, int)):
            raise RecordError(f"'post_id' must be text, got {type(post_id).__name__}", where, FIX)
        record.id = str(post_id)
    return record


def _to_rows(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        c, _ = pair_indices(record, i, "shp")
        if record.is_chat:
            raise writer_error(
                i, record, "SHP posts are text; this prompt is chat", "write trl-conversational or alignlab"
            )
        row: Row = {
            "history": record.prompt,
            "human_ref_A": record.completions[0],
            "human_ref_B": record.completions[1],
            "labels": 1 if c == 0 else 0,
        }
        if record.id is not None:
            row["post_id"] = record.id
        upvotes = record.meta.get("upvotes")
        if isinstance(upvotes, list) and len(upvotes) == 2:
            row["score_A"], row["score_B"] = upvotes
        if record.meta.get("domain") is not None:
            row["domain"] = record.meta["domain"]
        rows.append(row)
    return rows


SHP = Format(
    "shp",
    "Stanford Human Preferences: history + human_ref_A/B + labels",
    lambda rows: has_columns(rows, "history", "human_ref_A", "human_ref_B"),
    per_row(_row),
    _to_rows,
    ("history", "human_ref_A", "human_ref_B", "labels"),
)
