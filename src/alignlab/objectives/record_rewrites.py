"""Record rewriting for the objectives whose method lives in a ``prepare`` hook (records in, records out).

These hooks rewrite feedback into training text: control tokens, judgement templates, score prompts.
They only build :class:`Record` objects; tokenisation and scoring stay with the data path and the
engine. Per-completion conditioning goes into ``Record.context_prefixes`` (attended to, never scored)
so that one record can still share its prompt across its completions.
"""

from __future__ import annotations

import copy
from typing import Any

from alignlab.data.records import Prompt, Record, RecordError


def where(record: Record, index: int) -> str:
    return f"record {record.id}" if record.id is not None else f"record #{index}"


def prefix_prompt(prompt: Prompt, text: str) -> Prompt:
    """Put ``text`` before the prompt: plain prompts get it prepended, chat prompts at the start of the
    first message (so chat templates that reject a leading system turn still work)."""
    if not text:
        return copy.deepcopy(prompt)
    if isinstance(prompt, str):
        return text + prompt
    messages = copy.deepcopy(prompt)
    messages[0]["content"] = text + messages[0]["content"]
    return messages


def best_indices(record: Record, index: int, score_key: str = "") -> list[int]:
    """Completions of the best rank (ranking), else the highest named score, else an error."""
    if record.ranking is not None:
        best = min(record.ranking)
        return [i for i, r in enumerate(record.ranking) if r == best]
    if record.scores is not None:
        values = [score_of(record, i, score_key, index) for i in range(record.k)]
        top = max(values)
        return [i for i, v in enumerate(values) if v == top]
    raise RecordError(
        "needs a ranking or scores to select the best completion",
        where(record, index),
        "give each record a 'ranking' or 'scores' (e.g. a reward per completion)",
    )


def score_of(record: Record, i: int, key: str, index: int) -> float:
    """Completion i's rating ``key`` (or its only rating when ``key`` is empty), or a clear error."""
    ratings = record.scores[i] if record.scores is not None else {}
    if key:
        if key not in ratings:
            raise RecordError(
                f"scores[{i}] has no rating '{key}' (has {sorted(ratings)})",
                where(record, index),
                "set the objective's score_key to one of the rating names",
            )
        return float(ratings[key])
    if len(ratings) != 1:
        raise RecordError(
            f"scores[{i}] has {len(ratings)} ratings {sorted(ratings)}; which one is the reward is ambiguous",
            where(record, index),
            "set the objective's score_key",
        )
    return float(next(iter(ratings.values())))


def is_good(record: Record, i: int) -> bool:
    """Desirable: best rank of a ranking, or a True label; a lone completion counts as good."""
    if record.labels is not None:
        return bool(record.labels[i])
    if record.ranking is not None:
        return record.ranking[i] == min(record.ranking)
    return True


def single(prompt: Prompt, completion: str, source: Record, prefix: str | None = None, **meta: Any) -> Record:
    """A K = 1 record carrying ``source``'s weight and provenance, with an optional context prefix."""
    new_meta = {**source.meta, **meta}
    return Record(
        prompt=copy.deepcopy(prompt),
        completions=[completion],
        weight=source.weight,
        source=source.source,
        annotator=source.annotator,
        id=source.id,
        meta=new_meta,
        context_prefixes=[prefix] if prefix else None,
    )
