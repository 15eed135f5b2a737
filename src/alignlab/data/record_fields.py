"""The parts of a feedback record's checks: its error type, spans, and a validator per field.

``Record.validate`` (``records.py``) runs them in order; each raises :class:`RecordError` naming the
field, what was expected and the fix. Importable from ``alignlab.data.records`` as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CHAT_ROLES = ("system", "user", "assistant", "tool")


class RecordError(ValueError):
    """A record is malformed. ``where`` names the file and line (or field) so the user can fix it."""

    def __init__(self, message: str, where: str = "", fix: str = ""):
        self.where, self.detail, self.fix = where, message, fix
        text = f"{where}: {message}" if where else message
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


@dataclass
class Span:
    """A marked character range ``[start, end)`` of a completion, e.g. a wrong or harmful part."""

    start: int
    end: int
    label: str = "bad"
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, "weight": self.weight}


def is_number(value: Any) -> bool:
    """An int or float, not a bool (NaN allowed: ``extras`` use it for "none")."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


TEXT_FIX = "write the text as a JSON string"
SPAN_KEYS = ("start", "end", "label", "weight")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_spans(spans: Any, where: str) -> list[list[Span]] | None:
    """The JSON ``spans`` field as Span objects, refusing anything but {start, end, label, weight}."""
    if spans is None:
        return None
    fix = 'write "spans": [[{"start": 0, "end": 4, "label": "wrong"}], []] (one list per completion)'
    if not isinstance(spans, list) or not all(isinstance(s, list) for s in spans):
        raise RecordError("'spans' must be a list (one per completion) of lists of spans", where, fix)
    out = []
    for i, per in enumerate(spans):
        row = []
        for j, s in enumerate(per):
            if not isinstance(s, dict) or "start" not in s or "end" not in s:
                raise RecordError(f"spans[{i}][{j}] must be an object with 'start' and 'end'", where, fix)
            unknown = sorted(set(s) - set(SPAN_KEYS))
            if unknown:
                raise RecordError(
                    f"spans[{i}][{j}] has unknown key(s) {unknown}; a span has {SPAN_KEYS}", where, fix
                )
            row.append(Span(**s))
        out.append(row)
    return out


def check_span(s: Any, i: int, text: str, where: str) -> None:
    if not isinstance(s, Span):
        raise RecordError(f"spans[{i}] must hold Span objects, got {type(s).__name__}", where)
    if not is_int(s.start) or not is_int(s.end):
        raise RecordError(
            f"span offsets in spans[{i}] must be integers, got start={s.start!r}, end={s.end!r}",
            where,
            'give character offsets as whole numbers, e.g. {"start": 3, "end": 9}',
        )
    if not (0 <= s.start < s.end <= len(text)):
        raise RecordError(
            f"span [{s.start}, {s.end}) is outside completions[{i}] (length {len(text)})",
            where,
            "offsets count characters of the completion: 0 <= start < end <= its length",
        )
    if not isinstance(s.label, str):
        raise RecordError(
            f"a span label in spans[{i}] must be a string, got {s.label!r:.40}", where, TEXT_FIX
        )
    if not is_finite_number(s.weight):
        raise RecordError(
            f"a span weight in spans[{i}] must be a finite number, got {s.weight!r}",
            where,
            "give a finite weight or leave it out (default 1.0)",
        )


def check_scores(scores: Any, k: int, where: str) -> None:
    check_len("scores", scores, k, where)
    for i, ratings in enumerate(scores):
        if not isinstance(ratings, dict):
            raise RecordError(
                f"scores[{i}] must be an object of named ratings, got {type(ratings).__name__}",
                where,
                'write e.g. {"helpfulness": 4}',
            )
        for name, value in ratings.items():
            if not is_finite_number(value):
                raise RecordError(
                    f"scores[{i}].{name} must be a finite number, got {value!r:.40}",
                    where,
                    "write the rating as a number (not text), or leave the name out",
                )


FORMAT_HINT = (
    "alignlab records need 'prompt' and 'completions'; for other layouts pass --format "
    "(trl, trl-conversational, hh-rlhf, ultrafeedback, oasst, shp, helpsteer)"
)


def check_len(name: str, value: Any, k: int, where: str) -> None:
    if not isinstance(value, list) or len(value) != k:
        got = len(value) if isinstance(value, list) else type(value).__name__
        raise RecordError(
            f"'{name}' must be a list with one entry per completion ({k}), got {got}",
            where,
            f"give exactly one '{name}' entry per completion, in the same order",
        )


def check_extras(extras: Any, k: int, where: str) -> None:
    if not isinstance(extras, dict):
        raise RecordError("'extras' must be an object of named numbers", where)
    for name, value in extras.items():
        if is_number(value):
            continue
        if isinstance(value, list) and len(value) == k and all(is_number(v) for v in value):
            continue
        raise RecordError(
            f"extras.{name} must be a number or a list of {k} numbers (one per completion), got {value!r}",
            where,
        )


def check_layout(roles: Any, prefixes: Any, k: int, where: str) -> None:
    if roles is not None:
        check_len("roles", roles, k, where)
        if not all(isinstance(r, str) for r in roles):
            raise RecordError(
                f"'roles' must hold a string per completion (\"\" = scored), got {roles!r:.60}",
                where,
                TEXT_FIX,
            )
    if prefixes is not None:
        check_len("context_prefixes", prefixes, k, where)
        if not all(p is None or isinstance(p, str) for p in prefixes):
            raise RecordError(
                f"'context_prefixes' must hold a string or null per completion, got {prefixes!r:.60}",
                where,
                TEXT_FIX,
            )


def check_prompt(prompt: Any, where: str) -> None:
    fix = 'write "prompt": "text" or [{"role": "user", "content": "..."}, ...]'
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RecordError("'prompt' is empty", where, "give the prompt text or chat messages")
        return
    if not isinstance(prompt, list) or not prompt:
        raise RecordError(
            f"'prompt' must be a string or a non-empty list of chat messages, got {type(prompt).__name__}",
            where,
            fix,
        )
    for i, message in enumerate(prompt):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise RecordError(f"prompt[{i}] must be an object with 'role' and 'content'", where, fix)
        if message["role"] not in CHAT_ROLES:
            raise RecordError(
                f"prompt[{i}].role is {message['role']!r:.40}; expected one of {CHAT_ROLES}", where, fix
            )
        if not isinstance(message["content"], str):
            raise RecordError(
                f"prompt[{i}].content must be a string, got {type(message['content']).__name__}", where, fix
            )
