"""Deita selection (Liu et al. 2023, "What Makes Good Data for Alignment?", arXiv 2312.15685).

Score-first, diversity-aware selection: each sample's evol score is s = c · q (complexity × quality);
samples are visited by s descending, and a sample joins the selected set only if its embedding's cosine
similarity to its nearest neighbour already selected is below τ (the "Repr Filter"), until the budget m
is reached. Checked: METHODS.md `deita` block (paper section 4, "Score-First, Diversity-Aware Data
Selection"; recall, with τ = 0.9 as the block's default); the EVOL-COMPLEXITY / EVOL-QUALITY scorers are
not shipped: ``complexity`` and ``quality`` are given (rating names of the records, a judge's scores
through the CLI, or 1 to select by diversity alone). Multi-turn sums over turns are not done here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignlab.data.records import Record
from alignlab.data.select.base import Selection, check_budget, normalise, select_indices
from alignlab.data.tools import register_tool


@register_tool(
    "deita",
    kind="select",
    paper="Liu et al. 2023 'What Makes Good Data for Alignment?' (Deita, arXiv 2312.15685)",
    test="tests/data/test_select.py::test_deita_*: identical samples -> one selected; planted duplicates removed",
    checked="METHODS.md deita block (paper recall); s = c*q, nearest-neighbour cosine < tau",
)
def deita(
    records: Sequence[Record],
    budget: int | float,
    embeddings: np.ndarray,
    complexity: Sequence[float] | None = None,
    quality: Sequence[float] | None = None,
    threshold: float = 0.9,
) -> Selection:
    """Keep up to ``budget`` records by evol score c·q, skipping any whose cosine similarity to a record
    already kept is ≥ ``threshold``. Scores of the selection = c·q per candidate."""
    n = len(records)
    m = check_budget(budget, n)
    c = np.ones(n) if complexity is None else np.asarray(complexity, dtype=np.float64)
    q = np.ones(n) if quality is None else np.asarray(quality, dtype=np.float64)
    if c.shape != (n,) or q.shape != (n,) or len(embeddings) != n:
        raise ValueError("deita: complexity, quality and embeddings need one entry per record")
    evol = c * q
    unit = normalise(embeddings)
    order = np.argsort(-evol, kind="stable")  # ties keep input order
    kept: list[int] = []
    dropped: Counter = Counter()
    for i in order.tolist():
        if len(kept) >= m:
            dropped["over the budget"] += 1
            continue
        if kept and float(np.max(unit[kept] @ unit[i])) >= threshold:
            dropped[f"too similar to a selected record (cosine >= {threshold})"] += 1
            continue
        kept.append(i)
    return select_indices(records, kept, evol.tolist(), "deita", dropped)
