"""Checking a submitted label and turning it from displayed positions into completion indices.

Annotators see the completions of a task in a random order (``order[p]`` is the completion shown at
position ``p``). The page answers in positions; everything stored and exported is in completion indices,
and the order is kept beside the label to measure position bias.

Submitted (positions)                                  Stored (completion indices)
``choice``: "first" | "second" | "tie" | "both_bad"    ``pairwise``: {outcome: win|tie|both_bad, winner}
``order``: positions, best first                       ``ranking``: rank per completion (0 = best)
``ratings``: [{aspect: int}] per position              ``ratings``: [{aspect: int}] per completion
``critique``: [text | null] per position               ``critique``: [text | null] per completion
``spans``: [[{start, end, label}]] per position        ``spans``: [[{start, end, label}]] per completion
"""

from __future__ import annotations

from typing import Any

KINDS = ("pairwise", "ranking", "rating", "critique", "spans")
PAIR_CHOICES = ("first", "second", "tie", "both_bad")
_FIELD_OF_KIND = {"pairwise": "choice", "ranking": "order", "rating": "ratings", "critique": "critique"}
_FIELD_OF_KIND["spans"] = "spans"
MAX_CRITIQUE = 20_000
MAX_SPANS = 200  # marked spans per completion: more is not a reading of the text but a flood
MAX_SPAN_LABEL = 100


class LabelError(ValueError):
    """A submitted label is malformed; the message names the field and what is expected."""


def check_project_kinds(kinds: Any, aspects: Any, span_labels: Any) -> None:
    if not isinstance(kinds, list) or not kinds or not all(k in KINDS for k in kinds):
        raise LabelError(f"kinds must be a non-empty list drawn from {list(KINDS)}, got {kinds!r}")
    if len(set(kinds)) != len(kinds):
        raise LabelError(f"kinds lists a kind twice: {kinds!r}")
    if "rating" in kinds:
        if not isinstance(aspects, dict) or not aspects:
            raise LabelError(
                "kinds has 'rating', so aspects must name at least one scale, e.g. {'helpful': {}}"
            )
    for name, scale in (aspects or {}).items():
        if not isinstance(name, str) or not name.strip() or not isinstance(scale, dict):
            raise LabelError(f"aspect {name!r}: give a name and a scale object like {{'min': 1, 'max': 5}}")
        low, high = scale.get("min", 1), scale.get("max", 5)
        if not (isinstance(low, int) and isinstance(high, int)) or isinstance(low, bool) or low >= high:
            raise LabelError(f"aspect {name!r}: min and max must be integers with min < max")
    if "spans" in kinds and (
        not isinstance(span_labels, list) or not all(isinstance(s, str) for s in span_labels)
    ):
        raise LabelError("span_labels must be a list of strings, e.g. ['wrong', 'unsafe']")


def scale_of(aspects: dict[str, Any], name: str) -> tuple[int, int]:
    scale = aspects[name]
    return int(scale.get("min", 1)), int(scale.get("max", 5))


def canonical_label(
    payload: dict[str, Any],
    order: list[int],
    completions: list[str],
    kinds: list[str],
    aspects: dict[str, Any],
    span_labels: list[str],
) -> dict[str, Any]:
    """Check ``payload`` (in displayed positions) and return the stored value (in completion indices)."""
    k = len(order)
    wanted = {_FIELD_OF_KIND[kind] for kind in kinds}
    given = {key for key in _FIELD_OF_KIND.values() if payload.get(key) is not None}
    if given - wanted:
        raise LabelError(
            f"this project does not collect {sorted(given - wanted)}; it collects {sorted(wanted)}"
        )
    if wanted - given:
        raise LabelError(f"missing {sorted(wanted - given)}: this project asks for {sorted(wanted)}")
    value: dict[str, Any] = {}
    if "pairwise" in kinds:
        choice = payload["choice"]
        if k != 2:
            raise LabelError(f"choice: a pairwise choice needs 2 completions, this task has {k}")
        if choice not in PAIR_CHOICES:
            raise LabelError(f"choice must be one of {list(PAIR_CHOICES)}, got {choice!r}")
        if choice in ("first", "second"):
            value["pairwise"] = {"outcome": "win", "winner": order[0 if choice == "first" else 1]}
        else:
            value["pairwise"] = {"outcome": choice, "winner": None}
    if "ranking" in kinds:
        ranked = payload["order"]
        if not isinstance(ranked, list) or _has_bool(ranked) or sorted(ranked) != list(range(k)):
            raise LabelError(f"order must list every displayed position 0..{k - 1} once, best first")
        ranks = [0] * k
        for rank, position in enumerate(ranked):
            ranks[order[position]] = rank
        value["ranking"] = ranks
    if "rating" in kinds:
        value["ratings"] = _reorder(_check_ratings(payload["ratings"], k, aspects), order)
    if "critique" in kinds:
        texts = payload["critique"]
        if not isinstance(texts, list) or len(texts) != k:
            raise LabelError(
                f"critique must be a list with one text (or null) per displayed completion ({k})"
            )
        if not all(t is None or (isinstance(t, str) and len(t) <= MAX_CRITIQUE) for t in texts):
            raise LabelError(f"critique entries must be text of at most {MAX_CRITIQUE} characters, or null")
        texts = [t if t and t.strip() else None for t in texts]
        if all(t is None for t in texts):
            raise LabelError("critique: write a critique of at least one completion")
        value["critique"] = _reorder(texts, order)
    if "spans" in kinds:
        value["spans"] = _reorder(_check_spans(payload["spans"], order, completions, span_labels), order)
    return value


def _has_bool(values: list[Any]) -> bool:
    return any(isinstance(v, bool) or not isinstance(v, int) for v in values)


def _reorder(per_position: list[Any], order: list[int]) -> list[Any]:
    out: list[Any] = [None] * len(order)
    for position, index in enumerate(order):
        out[index] = per_position[position]
    return out


def _check_ratings(ratings: Any, k: int, aspects: dict[str, Any]) -> list[dict[str, int]]:
    if not isinstance(ratings, list) or len(ratings) != k:
        raise LabelError(f"ratings must be a list with one object per displayed completion ({k})")
    for position, per in enumerate(ratings):
        if not isinstance(per, dict) or set(per) != set(aspects):
            raise LabelError(f"ratings[{position}] must rate exactly the aspects {sorted(aspects)}")
        for name, rating in per.items():
            low, high = scale_of(aspects, name)
            if isinstance(rating, bool) or not isinstance(rating, int) or not low <= rating <= high:
                raise LabelError(f"ratings[{position}].{name} must be an integer from {low} to {high}")
    return ratings


def _check_spans(spans: Any, order: list[int], completions: list[str], names: list[str]) -> list[Any]:
    k = len(order)
    if not isinstance(spans, list) or len(spans) != k or not all(isinstance(s, list) for s in spans):
        raise LabelError(f"spans must be a list with one list of spans per displayed completion ({k})")
    out = []
    for position, marked in enumerate(spans):
        text = completions[order[position]]
        if len(marked) > MAX_SPANS:
            raise LabelError(
                f"spans[{position}]: at most {MAX_SPANS} spans per completion, got {len(marked)}"
            )
        clean = []
        for span in marked:
            if not isinstance(span, dict) or _has_bool([span.get("start"), span.get("end")]):
                raise LabelError(
                    f"spans[{position}]: each span is {{start, end, label}} with integer offsets"
                )
            start, end, label = span["start"], span["end"], span.get("label", names[0] if names else "bad")
            if not 0 <= start < end <= len(text):
                raise LabelError(
                    f"spans[{position}]: [{start}, {end}) is outside the text (length {len(text)})"
                )
            if not isinstance(label, str) or not 0 < len(label) <= MAX_SPAN_LABEL:
                raise LabelError(f"spans[{position}]: a label is text of 1 to {MAX_SPAN_LABEL} characters")
            if names and label not in names:
                raise LabelError(f"spans[{position}]: label {label!r} is not one of {names}")
            clean.append({"start": start, "end": end, "label": label})
        out.append(clean)
    return out
