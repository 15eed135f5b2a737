"""Deita selection (Liu et al. 2024, "What Makes Good Data for Alignment?", ICLR 2024, arXiv 2312.15685).

Score-first, diversity-aware selection: each sample's evol score is s = c · q (complexity × quality; for a
multi-turn sample s = Σ_t c_t · q_t over its turns); samples are visited by s descending, and a sample
joins the selected set only if its embedding's cosine similarity to every sample already selected is at
most τ (the "Repr Filter"), until the budget m is reached.

Checked against the official code, github.com/hkust-nlp/deita (read 2026-12-05):
``src/deita/selection/filter/combined_filter.py`` (final score = the product of the score arrays, summed
over turns; sorted descending) and ``selection/filter/base.py`` ``IterativeFilter.filter`` (the first
sample is kept; a later one is dropped when its cosine similarity to any kept one is > threshold; stop at
``data_size``). The official filter also compares each batch with itself; with batch size 1 (its
default) that is this loop. The scores: ``complexity`` / ``quality`` given per record (rating names of
the records, 1 when absent), or ``evol`` directly, e.g. from the scorer models
(:mod:`alignlab.scoring.deita_scorer`, ``alignlab data select --complexity-scorer/--quality-scorer``).
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
    test="tests/data/test_select.py::test_deita_*: identical samples -> one selected; planted duplicates "
    "removed; tests/scoring/test_deita_scorer.py: scorer = numpy expectation over the digit logits",
    checked="official code hkust-nlp/deita selection/filter/{combined_filter,base}.py (s = sum_t c_t q_t, "
    "drop when cosine > tau) and selection/scorer/{base,llama_scorer}.py (templates, expected score)",
)
def deita(
    records: Sequence[Record],
    budget: int | float,
    embeddings: np.ndarray,
    complexity: Sequence[float] | None = None,
    quality: Sequence[float] | None = None,
    threshold: float = 0.9,
    evol: Sequence[float] | None = None,
) -> Selection:
    """Keep up to ``budget`` records by evol score (``evol``, else c·q), skipping any whose cosine
    similarity to a record already kept is > ``threshold``. Scores of the selection = the evol scores."""
    n = len(records)
    m = check_budget(budget, n)
    c = np.ones(n) if complexity is None else np.asarray(complexity, dtype=np.float64)
    q = np.ones(n) if quality is None else np.asarray(quality, dtype=np.float64)
    if c.shape != (n,) or q.shape != (n,) or len(embeddings) != n:
        raise ValueError("deita: complexity, quality and embeddings need one entry per record")
    if evol is not None and (complexity is not None or quality is not None):
        raise ValueError("deita: give evol scores or complexity/quality, not both")
    evol = c * q if evol is None else np.asarray(evol, dtype=np.float64)
    if evol.shape != (n,):
        raise ValueError("deita: evol needs one score per record")
    unit = normalise(embeddings)
    order = np.argsort(-evol, kind="stable")  # ties keep input order
    kept: list[int] = []
    dropped: Counter = Counter()
    for i in order.tolist():
        if len(kept) >= m:
            dropped["over the budget"] += 1
            continue
        if kept and float(np.max(unit[kept] @ unit[i])) > threshold:
            dropped[f"too similar to a selected record (cosine > {threshold})"] += 1
            continue
        kept.append(i)
    return select_indices(records, kept, evol.tolist(), "deita", dropped)
