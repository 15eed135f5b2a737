"""What every selector shares: the Selection result, the text of a record, and model-free embeddings."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alignlab.data.records import Record


@dataclass
class Selection:
    """The records a selector kept (in input order), their input indices, every candidate's score
    (``nan`` where the method gives none) and the candidates left out, by reason."""

    records: list[Record]
    indices: list[int]
    scores: list[float]
    dropped: Counter = field(default_factory=Counter)
    name: str = ""

    def summary(self) -> str:
        n = len(self.scores)
        text = f"{self.name}: {n} records in -> {len(self.records)} out"
        if self.dropped:
            text += "; left out:" + "".join(f"\n  {c} x {why}" for why, c in self.dropped.most_common())
        return text


def select_indices(
    records: Sequence[Record], keep: Sequence[int], scores: Sequence[float], name: str, dropped: Counter
) -> Selection:
    order = sorted(keep)
    return Selection([records[i] for i in order], order, [float(s) for s in scores], dropped, name)


def record_text(record: Record, which: str = "first") -> str:
    """The text a selector compares: the prompt, then the first (``first``), best-ranked (``chosen``) or
    no (``prompt``) completion."""
    text = record.prompt_text()
    if which == "prompt" or not record.completions:
        return text
    completion = record.chosen if which == "chosen" and record.ranking is not None else record.completions[0]
    return f"{text}\n{completion}"


def hashed_embeddings(texts: Sequence[str], dim: int = 1024, n: int = 3) -> np.ndarray:
    """L2-normalised counts of character ``n``-grams hashed (BLAKE2) into ``dim`` buckets, [N, dim].

    No model: identical texts get cosine 1, texts that share few n-grams get cosine near 0. Use an encoder
    (``--encoder``) for semantic similarity.
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        padded = f" {text.lower()} "
        for start in range(max(1, len(padded) - n + 1)):
            gram = padded[start : start + n].encode("utf-8")
            bucket = int.from_bytes(hashlib.blake2b(gram, digest_size=4).digest(), "little") % dim
            out[row, bucket] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def normalise(embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(norms == 0, 1.0, norms)


def check_budget(budget: int | float, n: int) -> int:
    """A budget as a count: an int, or a fraction of ``n`` in (0, 1]."""
    if isinstance(budget, float) and 0 < budget <= 1:
        return round(budget * n)
    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, float))
        or budget < 0
        or budget != int(budget)
    ):
        raise ValueError(f"budget must be a whole number >= 0 or a fraction in (0, 1], got {budget!r}")
    return min(int(budget), n)
