"""Checking what a metric is given (records are numbered from 0, in the order given): bad values (NaN rewards,
verdicts outside their range, empty outputs) are reported by record with a count, never dropped silently.
``on_invalid="raise"`` (the default) stops with the list; ``"skip"`` leaves those records out and says so in the
result's notes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.eval.registry import MetricError

ON_INVALID = ("raise", "skip")


def json_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, Any, str]]:
    """(line number, parsed value, the line) for each non-blank line of a JSONL file, each line parsed only when
    the caller asks for it (a reader that stops early never sees a broken line past where it stopped). A missing
    file (checked at the call: ``no such {what}``) or a line that is not JSON is a MetricError naming the file
    and line."""
    path = Path(path)
    if not path.exists():
        raise MetricError(f"{path}: no such {what}")
    lines = path.read_text(encoding="utf-8").splitlines()

    def parsed() -> Iterator[tuple[int, Any, str]]:
        for line_no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise MetricError(
                    f"{path}:{line_no}: invalid JSON ({err.msg}); write one JSON object per line"
                ) from None
            yield line_no, row, line

    return parsed()


def _show(indices: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f", … ({len(indices) - limit} more)" if len(indices) > limit else "")


def invalid_report(
    what: str,
    bad: dict[int, str],
    total: int,
    on_invalid: str,
    notes: list[str],
    hint: str = "",
    labels: Sequence[Any] | None = None,
) -> set[int]:
    """Raise (``on_invalid='raise'``) or note and return the bad record indices (``'skip'``); ``labels[i]``
    names record i in the message (its id) instead of its index."""
    if on_invalid not in ON_INVALID:
        raise MetricError(f"on_invalid must be one of {', '.join(ON_INVALID)}, got '{on_invalid}'")
    if not bad:
        return set()
    indices = sorted(bad)
    reasons: dict[str, list[int]] = {}
    for i in indices:
        reasons.setdefault(bad[i], []).append(i)
    name = (lambda i: labels[i]) if labels is not None else (lambda i: i)  # noqa: E731
    detail = "; ".join(f"{reason}: record {_show([name(i) for i in ids])}" for reason, ids in reasons.items())
    message = f"{len(indices)} of {total} {what} invalid ({detail})"
    if on_invalid == "raise":
        fix = (
            hint or "Fix them, or pass on_invalid='skip' (--on-invalid skip) to leave them out and count them"
        )
        raise MetricError(f"{message}. {fix}")
    notes.append(f"left out {message}")
    return set(indices)


def check_range(
    values: Sequence[Any], what: str, low: float, high: float, on_invalid: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(kept values as floats, kept indices): non-numbers, NaN and values outside [low, high] are invalid."""
    bad: dict[int, str] = {}
    parsed: list[float] = []
    for i, v in enumerate(values):
        try:
            x = float(v)
        except (TypeError, ValueError):
            bad[i] = f"not a number ({v!r})"
            parsed.append(math.nan)
            continue
        if math.isnan(x):
            bad[i] = "NaN"
        elif math.isinf(x):
            bad[i] = "infinite"
        elif not low <= x <= high:
            bad[i] = f"outside [{low:g}, {high:g}]"
        parsed.append(x)
    drop = invalid_report(what, bad, len(parsed), on_invalid, notes)
    keep = np.array([i for i in range(len(parsed)) if i not in drop], dtype=int)
    if keep.size == 0:
        raise MetricError(f"no valid {what} left to evaluate (all {len(parsed)} were invalid)")
    return np.asarray(parsed, dtype=float)[keep], keep


def check_finite(
    values: Sequence[Any], what: str, on_invalid: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(kept values, kept indices) where NaN/inf/non-numbers are invalid."""
    return check_range(values, what, -math.inf, math.inf, on_invalid, notes)


def check_texts(texts: Sequence[Any], what: str, on_invalid: str, notes: list[str]) -> set[int]:
    """Indices of empty or non-text outputs (raised or noted per ``on_invalid``)."""
    bad = {
        i: ("empty output" if isinstance(t, str) else f"not text ({type(t).__name__})")
        for i, t in enumerate(texts)
        if not isinstance(t, str) or not t.strip()
    }
    return invalid_report(what, bad, len(texts), on_invalid, notes)
