"""A metric's inputs from a JSONL table (``alignlab eval compute``): one row per unit (a prompt, a pair, a
battle, a curve point), one field per input. An input named ``verdicts`` is read from the field ``verdicts`` or
its singular ``verdict``; optional inputs are read when every row has them. A row that lacks a required field
or is not JSON is an error naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.eval.inputs import json_lines
from alignlab.eval.registry import MetricError, MetricSpec

# Inputs that are options, not columns.
NOT_COLUMNS = {
    "on_invalid",
    "rounds",
    "seed",
    "n_bins",
    "encoding",
    "sections",
    "example_counts",
    "anchor",
    "level",
}


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, each with its line number under the key ``__line__``."""
    path = Path(path)
    rows = []
    for line_no, row, _ in json_lines(path):
        if not isinstance(row, dict):
            raise MetricError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
        row["__line__"] = line_no
        rows.append(row)
    if not rows:
        raise MetricError(f"{path}: no rows")
    return rows


def read_columns(path: Path, spec: MetricSpec) -> dict[str, list[Any]]:
    """The metric's column inputs from ``path`` (see the module docstring)."""
    import inspect

    rows = read_rows(path)
    out: dict[str, list[Any]] = {}
    for name, p in inspect.signature(spec.fn).parameters.items():
        if name in NOT_COLUMNS or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        required = p.default is p.empty
        fields = [f for f in (name, singular(name)) if f in rows[0]]
        if not fields:
            if required:
                raise MetricError(
                    f"{path}:{rows[0]['__line__']}: missing field '{singular(name)}' (or '{name}'), which metric "
                    f"'{spec.name}' needs; the row has {', '.join(sorted(k for k in rows[0] if k != '__line__')) or 'no fields'}"
                )
            continue
        field = fields[0]
        values = []
        for row in rows:
            if field not in row:
                raise MetricError(f"{path}:{row['__line__']}: missing field '{field}' (the first row has it)")
            values.append(row[field])
        out[name] = values
    return out
