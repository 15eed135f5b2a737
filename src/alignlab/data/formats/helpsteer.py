"""HelpSteer (``helpsteer``): prompt/response rows, each with five human ratings from 0 to 4.

Schema read from the nvidia/HelpSteer dataset card: features ``prompt``, ``response``, ``helpfulness``,
``correctness``, ``coherence``, ``complexity``, ``verbosity`` (int, "each ranging between 0 and 4 where
higher means better"); HelpSteer2 (nvidia/HelpSteer2) has the same columns. Several rows share one
prompt (different responses); rows with the same prompt text are grouped into one record with K
completions and ``scores`` holding the five attributes, in first-seen order. Writing emits one row per
completion with its ratings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from alignlab.data.formats.base import Format, Outcome, Row, WhereRow, checked, has_columns, writer_error
from alignlab.data.records import Record, RecordError

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
FIX = "a HelpSteer row is {prompt, response, helpfulness, correctness, coherence, complexity, verbosity}"


def _ratings(row: Row, where: str) -> dict[str, float]:
    ratings = {}
    for name in ATTRIBUTES:
        value = row.get(name)
        if value is None:
            continue  # an attribute absent from this row is left out, not invented
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0 <= value <= 4
        ):
            raise RecordError(f"'{name}' must be a number from 0 to 4, got {value!r:.40}", where, FIX)
        ratings[name] = float(value)
    if not ratings:
        raise RecordError(f"no rating among {list(ATTRIBUTES)}", where, FIX)
    return ratings


def _to_records(rows: Iterable[WhereRow]) -> Iterator[Outcome]:
    groups: dict[str, list[tuple[str, str, dict[str, float]]]] = {}
    for where, row in rows:
        prompt, response = row.get("prompt"), row.get("response")
        try:
            if not isinstance(prompt, str) or not isinstance(response, str):
                missing = "prompt" if not isinstance(prompt, str) else "response"
                raise RecordError(f"missing or non-text field '{missing}'", where, FIX)
            ratings = _ratings(row, where)
        except RecordError as err:
            yield err
            continue
        groups.setdefault(prompt, []).append((where, response, ratings))
    for prompt, members in groups.items():
        where = members[0][0] + (
            f" (+{len(members) - 1} more rows with this prompt)" if len(members) > 1 else ""
        )
        record = Record(
            prompt=prompt,
            completions=[m[1] for m in members],
            scores=[m[2] for m in members],
            source="helpsteer",
        )
        yield checked(record, where)


def _to_rows(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        if record.is_chat:
            raise writer_error(
                i,
                record,
                "HelpSteer prompts are text; this prompt is chat",
                "write alignlab or trl-conversational",
            )
        if record.scores is None:
            raise writer_error(
                i,
                record,
                "helpsteer needs per-completion ratings ('scores')",
                "write trl or trl-unpaired for pairs or labels",
            )
        for text, ratings in zip(record.completions, record.scores, strict=True):
            rows.append({"prompt": record.prompt, "response": text, **ratings})
    return rows


HELPSTEER = Format(
    "helpsteer",
    "NVIDIA HelpSteer: prompt/response rows with five 0-4 ratings (grouped by prompt)",
    lambda rows: has_columns(rows, "prompt", "response") and any(a in rows[0] for a in ATTRIBUTES),
    _to_records,
    _to_rows,
    ("prompt", "response", *ATTRIBUTES),
)
