"""Standard JSON only: parse and write JSON that reads back to the same values in any other tool.

Python's :mod:`json` accepts several things that silently change data or that other readers refuse, so
every reader of user files in alignlab (data files, the app's uploads and API bodies) goes through
:func:`loads`, which refuses them with a message saying what and where:

- a key repeated in one object (``json`` keeps the last value and drops the first without a word);
- ``NaN``, ``Infinity``, ``-Infinity`` (not JSON; RFC 8259 section 6) and numbers too large for a float
  (``1e999`` would silently become infinity);
- integers longer than Python's digit limit, and nesting deeper than :data:`MAX_DEPTH`;
- strings holding an unpaired UTF-16 surrogate (``"\\ud800"``: it cannot be written as UTF-8, so the
  record could not be saved or sent anywhere).

:func:`dumps` writes with ``allow_nan=False`` so nothing non-standard is ever written either.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # records are a few levels deep; this only stops pathological input
FINITE_FIX = "write a finite number, or null for a missing value"
DEPTH_FIX = "records are a few levels deep; flatten the data"
UNSTORABLE_FIX = "write valid text (a surrogate must come in a pair) and finite numbers"


class JSONProblem(ValueError):
    """The text is not standard JSON, or holds something that would not read back unchanged."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, fix: str = ""):
        self.message, self.line, self.column, self.fix = message, line, column, fix
        at = ""
        if line is not None:
            at = f" at line {line}, column {column}" if column is not None else f" at line {line}"
        elif column is not None:
            at = f" at column {column}"
        super().__init__(message + at)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JSONProblem(
                f"key {key!r} appears twice in one object",
                fix="only one value can be kept: remove or rename one of them",
            )
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise JSONProblem(f"{name} is not a JSON number", fix=FINITE_FIX)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONProblem(f"number {text[:40]} is too large for a 64-bit float", fix=FINITE_FIX)
    return value


def loads(text: str | bytes) -> Any:
    """Parse standard JSON; :class:`JSONProblem` (with line and column where known) for anything else."""
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float)
    except JSONProblem:
        raise
    except json.JSONDecodeError as err:
        raise JSONProblem(f"invalid JSON: {err.msg}", err.lineno, err.colno, "fix the JSON syntax") from None
    except RecursionError:
        raise JSONProblem(f"nested more than {MAX_DEPTH} levels deep", fix=DEPTH_FIX) from None
    except ValueError as err:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise JSONProblem(f"invalid number: {err}", fix=FINITE_FIX) from None
    problem = find_unstorable(value)
    if problem:
        raise JSONProblem(problem, fix=UNSTORABLE_FIX)
    return value


def find_unstorable(value: Any) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored as standard UTF-8 JSON, naming the field; else None.

    Checks nesting depth, unpaired surrogates in strings and keys, and non-finite floats (which a
    Parquet or ``datasets`` file can hold although JSON cannot).
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep (at {path or 'the top'})"
        if isinstance(node, str):
            if not _is_utf8(node):
                return f"{path or 'the value'} holds an unpaired UTF-16 surrogate (not valid Unicode text)"
        elif isinstance(node, float):
            if not math.isfinite(node):
                return f"{path or 'the value'} is {node}, not a finite number"
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str) and not _is_utf8(key):
                    return f"a key in {path or 'the object'} holds an unpaired UTF-16 surrogate"
                stack.append((item, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                stack.append((item, f"{path}[{i}]", depth + 1))
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that refuses NaN and infinities instead of writing non-standard JSON."""
    return json.dumps(value, allow_nan=False, **kwargs)
