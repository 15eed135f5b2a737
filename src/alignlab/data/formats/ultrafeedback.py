"""UltraFeedback (``ultrafeedback``): one instruction, several model completions, each rated by GPT-4 on
four aspects with a rationale, plus a critique and overall scores.

Schema read from the openbmb/UltraFeedback dataset card and repository (github.com/OpenBMB/UltraFeedback
README, "Dataset Format"), and from code that reads it (e.g. HuggingFaceH4/ultrafeedback_binarized
``create_dataset.py``: ``c["overall_score"], c["response"], c["model"]``)::

    {"source": "evol_instruct", "instruction": "...", "models": [...],
     "completions": [{"model": "...", "principle": "helpfulness", "custom_system_prompt": "...",
                      "response": "...", "critique": "...", "overall_score": 7.5, "fine-grained_score": 4.25,
                      "annotations": {"instruction_following": {"Rating": "5", "Rationale": "..."},
                                      "honesty": {...}, "truthfulness": {"Type": [...], "Rating": "4", ...},
                                      "helpfulness": {...}}}, ...],
     "correct_answers": [...], "incorrect_answers": [...]}

Ratings are strings ("1"-"5", or "N/A" where an aspect does not apply); an annotation may also be a list
of such objects (averaged). Each completion becomes one completion of the record with ``scores``
``{aspect: rating, "overall_score": ..., "fine-grained_score": ...}`` (missing or "N/A" ratings are left
out of that completion's scores, never invented) and its ``critique``. Any other rating ("excellent",
``true``, ``NaN``) is an error naming the completion and aspect, never dropped in silence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from alignlab.data.formats.base import Format, Row, has_columns, per_row, writer_error
from alignlab.data.records import Record, RecordError

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
OVERALL = ("overall_score", "fine-grained_score")
FIX = "an UltraFeedback row is {instruction, completions: [{response, annotations, overall_score, ...}]}"


NOT_APPLICABLE = ("N/A", "n/a", "NA")
RATING_FIX = 'a rating is a number or numeric text such as "4", or "N/A" where the aspect does not apply'


def _number(value: Any, field: str, where: str) -> float | None:
    """A rating as a float; None for a missing value or "N/A"; anything else is an error naming the field."""
    if value is None or (isinstance(value, str) and value.strip() in NOT_APPLICABLE):
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise RecordError(f"{field} is {value!r:.40}, not a rating", where, RATING_FIX)
    return number


def _rating(annotation: Any, field: str, where: str) -> float | None:
    if isinstance(annotation, dict):
        key = "Rating" if "Rating" in annotation else "rating"
        return _number(annotation.get(key), f"{field}.{key}", where)
    if isinstance(annotation, list):
        values = [_rating(a, f"{field}[{j}]", where) for j, a in enumerate(annotation)]
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None
    return _number(annotation, field, where)


def _completion(c: Any, i: int, where: str) -> tuple[str, dict[str, float], str | None]:
    if not isinstance(c, dict) or not isinstance(c.get("response"), str):
        raise RecordError(f"completions[{i}] has no text 'response'", where, FIX)
    annotations = c.get("annotations")
    if annotations is None:
        annotations = {}
    if not isinstance(annotations, dict):
        raise RecordError(
            f"completions[{i}].annotations must be an object of aspects, got {type(annotations).__name__}",
            where,
            'write {"helpfulness": {"Rating": "4", "Rationale": "..."}, ...}',
        )
    ratings: dict[str, float] = {}
    for aspect, annotation in annotations.items():
        value = _rating(annotation, f"completions[{i}].annotations.{aspect}", where)
        if value is not None:
            ratings[aspect] = value
    for name in OVERALL:
        value = _number(c.get(name), f"completions[{i}].{name}", where)
        if value is not None:
            ratings[name] = value
    critique = c.get("critique")
    if critique is not None and not isinstance(critique, str):
        raise RecordError(
            f"completions[{i}].critique must be text, got {type(critique).__name__}", where, FIX
        )
    return c["response"], ratings, critique or None


def _row(row: Row, where: str) -> Record:
    instruction = row.get("instruction")
    if not isinstance(instruction, str):
        raise RecordError("missing or non-text field 'instruction'", where, FIX)
    completions = row.get("completions")
    if not isinstance(completions, list) or not completions:
        raise RecordError("'completions' must be a non-empty list of completion objects", where, FIX)
    texts, scores, critiques = [], [], []
    for i, c in enumerate(completions):
        text, ratings, critique = _completion(c, i, where)
        texts.append(text)
        scores.append(ratings)
        critiques.append(critique)
    meta: dict[str, Any] = {
        "models": [c.get("model") for c in completions],
        "principles": [c.get("principle") for c in completions],
    }
    if row.get("source") is not None:
        meta["subset"] = row["source"]
    for key in ("correct_answers", "incorrect_answers"):
        if row.get(key):
            meta[key] = row[key]
    return Record(
        prompt=instruction,
        completions=texts,
        scores=scores,
        critique=critiques if any(c is not None for c in critiques) else None,
        source="ultrafeedback",
        meta=meta,
    )


def _rating_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _to_rows(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        if record.is_chat:
            raise writer_error(
                i,
                record,
                "UltraFeedback instructions are text; this prompt is chat",
                "write trl-conversational or alignlab",
            )
        if record.scores is None:
            raise writer_error(
                i,
                record,
                "ultrafeedback needs per-completion ratings ('scores')",
                "write a format for pairs or labels (trl, trl-unpaired)",
            )
        models = record.meta.get("models") or [None] * record.k
        completions = []
        for j, text in enumerate(record.completions):
            ratings = record.scores[j]
            c: dict[str, Any] = {
                "model": models[j] if j < len(models) else None,
                "response": text,
                "annotations": {
                    k: {"Rating": _rating_text(v)} for k, v in ratings.items() if k not in OVERALL
                },
            }
            for name in OVERALL:
                if name in ratings:
                    c[name] = ratings[name]
            if record.critique is not None and record.critique[j] is not None:
                c["critique"] = record.critique[j]
            completions.append(c)
        row: Row = {"instruction": record.prompt, "completions": completions}
        if record.meta.get("subset") is not None:
            row["source"] = record.meta["subset"]
        rows.append(row)
    return rows


ULTRAFEEDBACK = Format(
    "ultrafeedback",
    "UltraFeedback: instruction + completions with per-aspect ratings and critiques",
    lambda rows: has_columns(rows, "instruction", "completions"),
    per_row(_row),
    _to_rows,
    ("instruction", "completions"),
)
