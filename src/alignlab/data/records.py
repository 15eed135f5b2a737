"""Feedback records: one prompt, K >= 1 completions, and the feedback people or models gave on them.

A record carries feedback of one or more kinds (``ranking``, ``labels``, ``scores``, ``critique``,
``spans``); objectives declare which kind they consume. Pairwise data is a ranking over K = 2
completions; binary feedback is ``labels``; a demonstration for SFT is K = 1 with no feedback at all.

JSON form (one object per JSONL line)::

    {"prompt": "text" | [{"role": "user", "content": "..."}, ...],
     "completions": ["...", "..."],
     "ranking": [0, 1],                      # rank per completion, 0 = best, ties share a rank
     "labels": [true, false],                # good / bad per completion
     "scores": [{"helpfulness": 4}, {...}],  # named ratings per completion
     "critique": ["text or null", ...],      # text critique per completion
     "spans": [[{"start": 3, "end": 9, "label": "wrong"}], []],  # character spans per completion
     "extras": {"prob_desirable": 0.8, "old_reward": [0.1, -0.3]},  # numbers a method reads (below)
     "roles": ["", "", "kl"],                # per completion: "" scored, else an auxiliary role (below)
     "context_prefixes": [null, "Critique: ...", null],  # per completion: attended to, never scored
     "weight": 1.0, "source": "hh-rlhf", "annotator": "a17", "id": "...", "meta": {...}}

``extras`` holds the numbers a method or the loop attaches to a record for an objective to read: a number
applies to every completion of the record, a list gives one number per completion. They reach the
objective as ``Scores.extra[name]`` (one value per completion; NaN where a record has none).

``roles`` and ``context_prefixes`` lay out the completions for the engine. A completion whose role is
``""`` is scored as feedback; any other role marks an auxiliary completion that objectives read apart
(KTO's mismatched ``"kl"`` completion, a reference model's sample). A context prefix is text placed
between the prompt and its completion: the completion attends to it, it is never scored. Both are None
when unused (every completion scored, no prefix). ``meta`` is free-form (the loop reads only
``meta.margin``; some prepare hooks read their own inputs there). The old places ``meta.roles``,
``meta.context_prefixes`` and ``meta.prob_desirable`` are refused here and moved by the file readers
(``data/legacy_layout.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from alignlab.data.record_fields import (
    CHAT_ROLES,
    FORMAT_HINT,
    TEXT_FIX,
    RecordError,
    Span,
    check_extras,
    check_layout,
    check_len,
    check_prompt,
    check_scores,
    check_span,
    is_finite_number,
    is_int,
    parse_spans,
)

__all__ = ["CHAT_ROLES", "FEEDBACK_KINDS", "MOVED_FROM_META", "FeedbackKind", "Message", "Prompt", "Record",
           "RecordError", "Span", "demonstration", "pair", "with_aux_completion"]  # fmt: skip

Message = dict[str, str]
Prompt = Union[str, list[Message]]
FeedbackKind = Literal["ranking", "labels", "scores", "critique", "spans"]
FEEDBACK_KINDS: tuple[str, ...] = ("ranking", "labels", "scores", "critique", "spans")
# meta keys that used to carry layout or method data, and where that data lives now
MOVED_FROM_META = {
    "roles": "the record field 'roles'",
    "context_prefixes": "the record field 'context_prefixes'",
    "prob_desirable": "extras.prob_desirable",
}


@dataclass
class Record:
    prompt: Prompt
    completions: list[str]
    ranking: list[int] | None = None
    labels: list[bool] | None = None
    scores: list[dict[str, float]] | None = None
    critique: list[str | None] | None = None
    spans: list[list[Span]] | None = None
    weight: float = 1.0
    source: str | None = None
    annotator: str | None = None
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, float | list[float]] = field(default_factory=dict)
    roles: list[str] | None = None  # per completion: "" scored, else its auxiliary role
    context_prefixes: list[str | None] | None = None  # per completion: text between prompt and completion

    # ------------------------------------------------------------------ views
    @property
    def k(self) -> int:
        return len(self.completions)

    @property
    def kinds(self) -> set[str]:
        """The kinds of feedback this record carries (empty for a plain demonstration)."""
        return {kind for kind in FEEDBACK_KINDS if getattr(self, kind) is not None}

    @property
    def completion_roles(self) -> list[str]:
        """The role of every completion (``""``: scored as feedback), also when ``roles`` is unset."""
        return list(self.roles) if self.roles is not None else [""] * self.k

    @property
    def completion_contexts(self) -> list[str | None]:
        """The context prefix of every completion (None: none), also when ``context_prefixes`` is unset."""
        return list(self.context_prefixes) if self.context_prefixes is not None else [None] * self.k

    @property
    def is_chat(self) -> bool:
        return isinstance(self.prompt, list)

    @property
    def chosen(self) -> str:
        """The best completion of a ranked record (the first one among ties)."""
        if self.ranking is None:
            raise RecordError("record has no ranking, so it has no chosen completion", f"record {self.id}")
        return self.completions[min(range(self.k), key=lambda i: self.ranking[i])]

    def prompt_text(self) -> str:
        """The prompt as plain text (chat turns joined) for display and hashing."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in self.prompt)

    # --------------------------------------------------------------- encoding
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt, "completions": list(self.completions)}
        for kind in ("ranking", "labels", "scores", "critique", "roles", "context_prefixes"):
            value = getattr(self, kind)
            if value is not None:
                out[kind] = list(value)
        if self.spans is not None:
            out["spans"] = [[s.to_dict() for s in spans] for spans in self.spans]
        if self.weight != 1.0:
            out["weight"] = self.weight
        for key in ("source", "annotator", "id"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.meta:
            out["meta"] = self.meta
        if self.extras:
            out["extras"] = self.extras
        return out

    @classmethod
    def from_dict(cls, obj: Any, where: str = "") -> Record:
        """Build and validate a record from its JSON form; errors name ``where`` (file:line)."""
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}", where)
        known = {
            "prompt",
            "completions",
            "weight",
            "source",
            "annotator",
            "id",
            "meta",
            "extras",
            "roles",
            "context_prefixes",
            *FEEDBACK_KINDS,
        }
        unknown = sorted(set(obj) - known)
        if unknown:
            raise RecordError(
                f"unknown field(s) {unknown}; a record has {sorted(known)}",
                where,
                "put extra information under 'meta', or pass --format to read another format",
            )
        for required in ("prompt", "completions"):
            if required not in obj:
                raise RecordError(f"missing field '{required}'", where, FORMAT_HINT)
        spans = parse_spans(obj.get("spans"), where)
        meta = obj.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise RecordError(
                f"'meta' must be an object, got {type(meta).__name__} {meta!r:.40}",
                where,
                'write meta as {"key": value, ...} or leave it out',
            )
        record = cls(
            prompt=obj["prompt"],
            completions=obj["completions"],
            ranking=obj.get("ranking"),
            labels=obj.get("labels"),
            scores=obj.get("scores"),
            critique=obj.get("critique"),
            spans=spans,
            weight=obj.get("weight", 1.0),
            source=obj.get("source"),
            annotator=obj.get("annotator"),
            id=obj.get("id"),
            meta=meta or {},
            extras=obj.get("extras") or {},
            roles=obj.get("roles"),
            context_prefixes=obj.get("context_prefixes"),
        )
        record.validate(where)
        return record

    # ------------------------------------------------------------- validation
    def validate(self, where: str = "") -> None:
        """Raise :class:`RecordError` naming the field, what was expected and the fix if anything is off."""
        check_prompt(self.prompt, where)
        if not isinstance(self.completions, list) or not self.completions:
            raise RecordError(
                "'completions' must be a non-empty list of strings",
                where,
                'write "completions": ["...", ...]',
            )
        for i, text in enumerate(self.completions):
            if not isinstance(text, str):
                raise RecordError(
                    f"completions[{i}] must be a string, got {type(text).__name__}", where, TEXT_FIX
                )
            if not text.strip():
                raise RecordError(
                    f"completions[{i}] is empty", where, "remove the record or give the completion text"
                )
        k = len(self.completions)
        if self.ranking is not None:
            check_len("ranking", self.ranking, k, where)
            if not all(is_int(r) and r >= 0 for r in self.ranking):
                raise RecordError(
                    f"'ranking' must hold integers >= 0 (0 = best; ties share a rank), got {self.ranking!r:.60}",
                    where,
                    "give each completion its rank as a whole number, e.g. [0, 1]",
                )
        if self.labels is not None:
            check_len("labels", self.labels, k, where)
            if not all(isinstance(x, bool) for x in self.labels):
                raise RecordError(
                    f"'labels' must hold true (good) or false (bad) per completion, got {self.labels!r:.60}",
                    where,
                    "write JSON true/false, not strings or numbers",
                )
        if self.scores is not None:
            check_scores(self.scores, k, where)
        if self.critique is not None:
            check_len("critique", self.critique, k, where)
            if not all(c is None or isinstance(c, str) for c in self.critique):
                raise RecordError("'critique' must hold a string or null per completion", where, TEXT_FIX)
        if self.spans is not None:
            check_len("spans", self.spans, k, where)
            for i, spans in enumerate(self.spans):
                for s in spans:
                    check_span(s, i, self.completions[i], where)
        if not is_finite_number(self.weight) or self.weight < 0:
            raise RecordError(
                f"'weight' must be a finite number >= 0, got {self.weight!r}",
                where,
                "give a finite weight such as 1.0, or leave it out",
            )
        check_extras(self.extras, k, where)
        check_layout(self.roles, self.context_prefixes, k, where)
        for name in ("source", "annotator"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise RecordError(
                    f"'{name}' must be a string, got {type(value).__name__}", where, f"write {name} as text"
                )
        if self.id is not None and not (isinstance(self.id, str) or is_int(self.id)):
            raise RecordError(
                f"'id' must be a string or an integer, got {type(self.id).__name__}",
                where,
                "give each record a text id, or leave it out",
            )
        if not isinstance(self.meta, dict):
            raise RecordError(f"'meta' must be an object, got {type(self.meta).__name__}", where)
        for key, new_place in MOVED_FROM_META.items():
            if key in self.meta:
                raise RecordError(
                    f"meta.{key} is no longer read: it is {new_place} now",
                    where,
                    f"set {new_place} instead (`alignlab data convert OLD NEW` rewrites a file in the old layout)",
                )
        from alignlab.data.strict_json import find_unstorable

        problem = find_unstorable(self.meta)
        if problem:
            raise RecordError(f"meta: {problem}", where, "store only finite numbers and valid text in meta")


def with_aux_completion(record: Record, text: str, role: str, context_prefix: str | None = None) -> Record:
    """A copy of ``record`` with one more completion of ``role`` (auxiliary: scored, never feedback).

    Every per-completion field is extended so the record stays valid: the ranking puts it last, labels
    mark it bad, scores, critique and spans are empty; ``roles`` and ``context_prefixes`` gain its entry
    (per-completion ``extras`` lists get NaN: the auxiliary completion has no such number).
    """
    import dataclasses

    changes: dict[str, Any] = {
        "completions": [*record.completions, text],
        "roles": [*record.completion_roles, role],
        "extras": {k: [*v, math.nan] if isinstance(v, list) else v for k, v in record.extras.items()},
    }
    if record.context_prefixes is not None or context_prefix is not None:
        changes["context_prefixes"] = [*record.completion_contexts, context_prefix]
    if record.ranking is not None:
        changes["ranking"] = [*record.ranking, max(record.ranking) + 1]
    if record.labels is not None:
        changes["labels"] = [*record.labels, False]
    if record.scores is not None:
        changes["scores"] = [*record.scores, {}]
    if record.critique is not None:
        changes["critique"] = [*record.critique, None]
    if record.spans is not None:
        changes["spans"] = [*record.spans, []]
    return dataclasses.replace(record, **changes)


def pair(prompt: Prompt, chosen: str, rejected: str, **extra: Any) -> Record:
    """A pairwise record: ``chosen`` preferred to ``rejected``."""
    return Record(prompt=prompt, completions=[chosen, rejected], ranking=[0, 1], **extra)


def demonstration(prompt: Prompt, completion: str, **extra: Any) -> Record:
    """A K = 1 record with no feedback: a target for supervised fine-tuning."""
    return Record(prompt=prompt, completions=[completion], **extra)
