"""Files written before ``roles``, ``context_prefixes`` and ``extras`` were record fields, read as today's records.

Older alignlab files kept a record's layout in ``meta.roles`` / ``meta.context_prefixes`` and BCO's
P(desirable | prompt) in ``meta.prob_desirable``. The alignlab reader moves them to their places (the
fields ``roles`` and ``context_prefixes``, ``extras.prob_desirable``) and counts what it moved, so the load
report says how many records were in the old layout; ``alignlab data convert IN OUT`` writes the file
back in the new one. A row that has a value in both places is refused: which one is meant is not clear.
Records built in code are never moved: ``Record.validate`` refuses the old keys with the new place.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from alignlab.data.records import MOVED_FROM_META, RecordError

# old meta key -> (top-level field, key inside it or None for the field itself)
_TARGETS: dict[str, tuple[str, str | None]] = {
    "roles": ("roles", None),
    "context_prefixes": ("context_prefixes", None),
    "prob_desirable": ("extras", "prob_desirable"),
}
assert set(_TARGETS) == set(MOVED_FROM_META)


def move_legacy_meta(row: dict[str, Any], where: str, moved: Counter[str]) -> dict[str, Any]:
    """``row`` (a record's JSON form) with the old meta keys at their new places; counts each in ``moved``."""
    meta = row.get("meta")
    if not isinstance(meta, dict) or not any(key in meta for key in _TARGETS):
        return row
    out, meta = dict(row), dict(meta)
    for key, (field, inner) in _TARGETS.items():
        if key not in meta:
            continue
        value = meta.pop(key)
        if inner is None:
            if out.get(field) is not None:
                raise _both(key, field, where)
            out[field] = value
        else:
            holder = out.get(field)
            holder = dict(holder) if isinstance(holder, dict) else {}
            if inner in holder:
                raise _both(key, f"{field}.{inner}", where)
            holder[inner] = value
            out[field] = holder
        moved[key] += 1
    out["meta"] = meta
    return out


def _both(key: str, new_place: str, where: str) -> RecordError:
    return RecordError(
        f"the record has both meta.{key} (the old place) and {new_place}",
        where,
        f"keep only {new_place} and remove meta.{key}",
    )


def moved_note(moved: Counter[str]) -> str:
    """One line for the load report: how many records had each old key and where it went."""
    parts = [
        f"{n} x meta.{key} -> {MOVED_FROM_META[key].removeprefix('the record field ')}"
        for key, n in sorted(moved.items())
    ]
    return (
        f"old layout moved on read: {', '.join(parts)} "
        "(`alignlab data convert IN OUT` rewrites the file in the new layout)"
    )
