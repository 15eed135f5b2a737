"""Conversions between feedback kinds: ratings -> pairs / ranking / labels, ranking -> pairs, pairs -> labels.

Every conversion returns a :class:`Converted`: the new records plus counts of what it left out and why
(ties, margins below the minimum, completions without the rating asked for, records of the wrong kind),
so nothing disappears silently. ``CONVERSIONS`` names them for configs (``data.convert: pairs_to_labels``)
and the CLI (``--convert ratings_to_pairs:strategy=best_vs_worst,min_margin=1``).

Per-completion fields (``scores``, ``critique``, ``spans``, ``roles``, ``context_prefixes``, the per-completion
lists of ``extras`` and the per-completion ``meta`` lists in ``PER_COMPLETION_META``) follow their completions
when a record is cut into pairs or single completions. A pair made from ratings has ``meta["margin"]`` = rating(chosen) -
rating(rejected) and ``meta["aspect"]`` = the rating used.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from alignlab.data.records import Record

Strategy = Literal["all", "best_vs_worst", "best_vs_random"]
# meta lists with one entry per completion (sliced with them); written by the readers in formats/
PER_COMPLETION_META = ("models", "principles", "message_ids", "upvotes")


@dataclass
class Converted:
    """The records a conversion made, and how many inputs (records, pairs, completions) it left out and why."""

    records: list[Record]
    dropped: Counter = field(default_factory=Counter)
    name: str = ""

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def summary(self) -> str:
        text = f"{self.name}: {len(self.records)} records"
        if self.dropped:
            text += "; left out:" + "".join(f"\n  {n} x {why}" for why, n in self.dropped.most_common())
        return text


def subset(record: Record, keep: Sequence[int], **changes: Any) -> Record:
    """``record`` restricted to the completions ``keep`` (in that order), per-completion fields included."""

    def pick(values: list | None) -> list | None:
        return None if values is None else [values[i] for i in keep]

    meta = dict(record.meta)
    for key, value in record.meta.items():
        if key in PER_COMPLETION_META and isinstance(value, list) and len(value) == record.k:
            meta[key] = [value[i] for i in keep]
    out = replace(
        record,
        completions=[record.completions[i] for i in keep],
        ranking=pick(record.ranking),
        labels=pick(record.labels),
        scores=pick(record.scores),
        critique=pick(record.critique),
        spans=pick(record.spans),
        roles=pick(record.roles),
        context_prefixes=pick(record.context_prefixes),
        extras={k: pick(v) if isinstance(v, list) else v for k, v in record.extras.items()},
        meta=meta,
    )
    return replace(out, **changes)


def _pair(record: Record, chosen: int, rejected: int, suffix: str | None, **meta: Any) -> Record:
    out = subset(record, [chosen, rejected], ranking=[0, 1], labels=None, scores=None)
    out.meta.update(meta)
    if record.id is not None and suffix is not None:
        out.id = f"{record.id}:{suffix}"
    return out


def rating_values(record: Record, aspect: str | None) -> dict[int, float]:
    """{completion index: rating} for the completions that have the rating ``aspect`` (see ratings_to_pairs)."""
    if record.scores is None:
        return {}
    if aspect == "mean":
        shared = set.intersection(*(set(s) for s in record.scores)) if record.scores else set()
        if not shared:
            return {}
        return {i: sum(s[n] for n in shared) / len(shared) for i, s in enumerate(record.scores)}
    if aspect is None:
        names = {n for s in record.scores for n in s}
        if len(names) > 1:
            raise ValueError(
                f"record {record.id or ''} has several ratings {sorted(names)}; pass aspect=<one of them> or "
                "aspect='mean'"
            )
        aspect = names.pop() if names else ""
    return {i: s[aspect] for i, s in enumerate(record.scores) if aspect in s}


def _aspect_name(aspect: str | None, record: Record) -> str:
    if aspect is not None:
        return aspect
    names = {n for s in record.scores or [] for n in s}
    return names.pop() if len(names) == 1 else "rating"


def ratings_to_pairs(
    records: Sequence[Record],
    aspect: str | None = None,
    strategy: Strategy = "all",
    min_margin: float = 0.0,
    seed: int | random.Random = 0,
) -> Converted:
    """Pairs (chosen, rejected) from per-completion ratings.

    ``aspect``: the rating name to compare; ``"mean"`` averages the ratings every completion of the record
    has; ``None`` uses the only rating name present (an error if there are several). ``strategy``:
    ``all`` - every pair with different ratings; ``best_vs_worst`` - the highest against the lowest;
    ``best_vs_random`` - the highest against a random lower-rated one (UltraFeedback-binarized style).
    Ties among the best go to the first completion. Pairs whose rating gap is below ``min_margin`` (or
    zero) are left out and counted.
    """
    if strategy not in ("all", "best_vs_worst", "best_vs_random"):
        raise ValueError(f"strategy must be all, best_vs_worst or best_vs_random, got {strategy!r}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)  # a Random continues a stream
    out = Converted([], name="ratings_to_pairs")
    for record in records:
        if record.scores is None:
            out.dropped["record without ratings"] += 1
            continue
        values = rating_values(record, aspect)
        name = _aspect_name(aspect, record)
        if len(values) < record.k:
            out.dropped[f"completion without rating {name!r}"] += record.k - len(values)
        if len(values) < 2:
            out.dropped["record with fewer than 2 rated completions"] += 1
            continue
        order = sorted(values, key=lambda i: (-values[i], i))  # best first; ties keep input order
        if strategy == "all":
            made = 0
            for a_pos, a in enumerate(order):
                for b in order[a_pos + 1 :]:
                    gap = values[a] - values[b]
                    if gap == 0:
                        out.dropped["pair tied"] += 1
                    elif gap < min_margin:
                        out.dropped["pair with margin below min_margin"] += 1
                    else:
                        out.records.append(_pair(record, a, b, f"{a}>{b}", margin=gap, aspect=name))
                        made += 1
            if made == 0:
                out.dropped["record with no usable pair"] += 1
            continue
        best = order[0]
        lower = [i for i in order[1:] if values[i] < values[best]]
        if strategy == "best_vs_worst":
            eligible = lower[-1:] if lower and values[best] - values[lower[-1]] >= min_margin else []
        else:
            eligible = [i for i in lower if values[best] - values[i] >= min_margin]
        if not lower:
            out.dropped["record with all ratings tied"] += 1
            continue
        if not eligible:
            out.dropped["record with margin below min_margin"] += 1
            continue
        worst = eligible[0] if strategy == "best_vs_worst" else rng.choice(eligible)
        gap = values[best] - values[worst]
        out.records.append(_pair(record, best, worst, f"{best}>{worst}", margin=gap, aspect=name))
    return out


def dense_ranks(values: Sequence[float]) -> list[int]:
    """Ranks with 0 = highest value and ties sharing a rank: [5, 5, 3] -> [0, 0, 1]."""
    distinct = sorted(set(values), reverse=True)
    return [distinct.index(v) for v in values]


def ratings_to_ranking(records: Sequence[Record], aspect: str | None = None) -> Converted:
    """A ranking (0 = best, equal ratings tied) from the rating ``aspect``; unrated completions are removed."""
    out = Converted([], name="ratings_to_ranking")
    for record in records:
        values = rating_values(record, aspect) if record.scores is not None else {}
        if record.scores is None:
            out.dropped["record without ratings"] += 1
            continue
        if len(values) < record.k:
            out.dropped[f"completion without rating {_aspect_name(aspect, record)!r}"] += record.k - len(
                values
            )
        if len(values) < 2:
            out.dropped["record with fewer than 2 rated completions"] += 1
            continue
        keep = sorted(values)
        out.records.append(subset(record, keep, ranking=dense_ranks([values[i] for i in keep]), scores=None))
    return out


def ranking_to_scores(records: Sequence[Record], name: str = "rank_score") -> Converted:
    """A rating ``name`` = (K - 1 - rank) per completion, so listwise methods that read graded labels
    (LiPO's ψ, PRO's rewards) can train on rankings; the ranking itself is kept. Records without one are dropped.
    """
    out = Converted([], name="ranking_to_scores")
    for record in records:
        if record.ranking is None:
            out.dropped["record without ranking"] += 1
            continue
        top = max(record.ranking)
        scores = [
            {**(record.scores[i] if record.scores else {}), name: float(top - r)}
            for i, r in enumerate(record.ranking)
        ]
        out.records.append(dataclasses.replace(record, scores=scores))
    return out


def ranking_to_pairs(
    records: Sequence[Record], strategy: Literal["all", "best_vs_worst", "adjacent"] = "all"
) -> Converted:
    """Pairs from rankings: every pair of different ranks (``all``), the best against the worst, or each
    completion against those of the next rank down (``adjacent``: K - 1 pairs for a strict ranking).
    Chosen comes first in every pair (ranking [0, 1]); tied pairs are left out and counted."""
    if strategy not in ("all", "best_vs_worst", "adjacent"):
        raise ValueError(f"strategy must be all, best_vs_worst or adjacent, got {strategy!r}")
    out = Converted([], name="ranking_to_pairs")
    for record in records:
        if record.ranking is None:
            out.dropped["record without a ranking"] += 1
            continue
        ranks = record.ranking
        order = sorted(range(record.k), key=lambda i: (ranks[i], i))
        if strategy == "best_vs_worst":
            pairs = [(order[0], order[-1])]
        elif strategy == "adjacent":
            levels = sorted(set(ranks))
            members = {r: [i for i in order if ranks[i] == r] for r in levels}
            pairs = [(a, b) for hi, lo in zip(levels, levels[1:]) for a in members[hi] for b in members[lo]]
        else:
            pairs = [(a, b) for pos, a in enumerate(order) for b in order[pos + 1 :]]
        made = 0
        for a, b in pairs:
            if ranks[a] == ranks[b]:
                out.dropped["pair tied"] += 1
                continue
            out.records.append(_pair(record, a, b, f"{a}>{b}" if record.k > 2 else None))
            made += 1
        if made == 0:
            out.dropped["record with all completions tied"] += 1
    return out


def pairs_to_labels(records: Sequence[Record], paired: bool = False) -> Converted:
    """KTO-style binary feedback from pairs: chosen -> good (True), rejected -> bad (False).

    Unpaired (default): two single-completion records per pair. ``paired=True``: one record with both
    completions and labels [True, False]. Records that are not strict K = 2 rankings are left out and counted.
    """
    out = Converted([], name="pairs_to_labels")
    for record in records:
        if record.ranking is None or record.k != 2:
            out.dropped[
                "record that is not a pair (run ranking_to_pairs first)"
                if record.ranking
                else "record without a ranking"
            ] += 1
            continue
        a, b = record.ranking
        if a == b:
            out.dropped["pair tied"] += 1
            continue
        chosen, rejected = (0, 1) if a < b else (1, 0)
        if paired:
            out.records.append(subset(record, [chosen, rejected], ranking=None, labels=[True, False]))
            continue
        for index, label, tag in ((chosen, True, "chosen"), (rejected, False, "rejected")):
            single = subset(record, [index], ranking=None, labels=[label])
            if record.id is not None:
                single.id = f"{record.id}:{tag}"
            out.records.append(single)
    return out


def ratings_to_labels(
    records: Sequence[Record], threshold: float, aspect: str | None = None, paired: bool = False
) -> Converted:
    """Good/bad labels from ratings: good when rating >= ``threshold``. Unrated completions are removed and
    counted. ``paired=True`` keeps a record's completions together; otherwise one record per completion."""
    out = Converted([], name="ratings_to_labels")
    for record in records:
        if record.scores is None:
            out.dropped["record without ratings"] += 1
            continue
        values = rating_values(record, aspect)
        if len(values) < record.k:
            out.dropped[f"completion without rating {_aspect_name(aspect, record)!r}"] += record.k - len(
                values
            )
        if not values:
            out.dropped["record with no rated completion"] += 1
            continue
        keep = sorted(values)
        labels = [values[i] >= threshold for i in keep]
        if paired:
            out.records.append(subset(record, keep, labels=labels, ranking=None, scores=None))
            continue
        for i, label in zip(keep, labels, strict=True):
            single = subset(record, [i], labels=[label], ranking=None, scores=None)
            if record.id is not None:
                single.id = f"{record.id}:{i}"
            out.records.append(single)
    return out


CONVERSIONS: dict[str, Callable[..., Converted]] = {
    "ratings_to_pairs": ratings_to_pairs,
    "ratings_to_ranking": ratings_to_ranking,
    "ratings_to_labels": ratings_to_labels,
    "ranking_to_pairs": ranking_to_pairs,
    "ranking_to_scores": ranking_to_scores,
    "pairs_to_labels": pairs_to_labels,
}


def convert(records: Sequence[Record], name: str, **options: Any) -> Converted:
    """Apply the conversion ``name`` with ``options``; unknown names or options get a clear error."""
    if name not in CONVERSIONS:
        raise ValueError(f"unknown conversion {name!r}; choose one of {sorted(CONVERSIONS)}")
    fn = CONVERSIONS[name]
    try:
        return fn(records, **options)
    except TypeError as err:
        if "argument" in str(err):
            import inspect

            params = [p for p in inspect.signature(fn).parameters if p != "records"]
            raise ValueError(f"{name}: {err}; its options are {params}") from None
        raise


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'ratings_to_pairs:strategy=best_vs_worst,min_margin=1' -> ('ratings_to_pairs', {...}).
    Values are read as JSON when they parse (numbers, true/false, null), else kept as text."""
    import json

    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"conversion option {item!r} must be key=value (in {spec!r})")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value.strip()
    return name.strip(), options
