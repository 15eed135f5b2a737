"""ZIP-FIT (Obbad et al. 2024, arXiv 2410.18194): select the candidates closest to a target set by gzip.

NCD(x, t) = (C(x ⊕ t) − min(C(x), C(t))) / max(C(x), C(t)), with C = gzip-compressed length in bytes;
alignment(x) = mean over the target examples t of (1 − NCD(x, t)); keep the top-k by alignment.
Checked: METHODS.md `zip_fit` block; the NCD formula against Li et al./Cilibrasi–Vitányi's normalised
compression distance (read in public NCD code via the search tool: same form, concatenation x ⊕ t).
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignlab.data.records import Record
from alignlab.data.select.base import Selection, check_budget, record_text, select_indices
from alignlab.data.tools import register_tool


def compressed_size(text: str, level: int = 9) -> int:
    return len(gzip.compress(text.encode("utf-8"), compresslevel=level, mtime=0))


def ncd(x: str, t: str, level: int = 9, cx: int | None = None, ct: int | None = None) -> float:
    """Normalised compression distance of two texts (≈ 0 for a text and itself, ≈ 1 for unrelated ones)."""
    cx = compressed_size(x, level) if cx is None else cx
    ct = compressed_size(t, level) if ct is None else ct
    return (compressed_size(x + t, level) - min(cx, ct)) / max(cx, ct)


@register_tool(
    "zip_fit",
    kind="select",
    paper="Obbad et al. 2024 'ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment' (arXiv 2410.18194)",
    test="tests/data/test_select.py::test_ncd_*, test_zip_fit_picks_the_in_domain_half",
    checked="METHODS.md zip_fit block; NCD as in Cilibrasi & Vitanyi (public NCD code read)",
)
def zip_fit(
    records: Sequence[Record],
    targets: Sequence[str],
    budget: int | float,
    level: int = 9,
    which: str = "first",
) -> Selection:
    """Keep the ``budget`` records whose text (``record_text(which)``) aligns best with ``targets``."""
    if not targets:
        raise ValueError("zip_fit needs at least one target text (--target FILE)")
    m = check_budget(budget, len(records))
    target_sizes = [compressed_size(t, level) for t in targets]
    scores = []
    for record in records:
        x = record_text(record, which)
        cx = compressed_size(x, level)
        scores.append(float(np.mean([1 - ncd(x, t, level, cx, ct) for t, ct in zip(targets, target_sizes)])))
    order = np.argsort(-np.asarray(scores), kind="stable")
    dropped = Counter(
        {"lower alignment than the budget's last": len(records) - m} if len(records) > m else {}
    )
    return select_indices(records, order[:m].tolist(), scores, "zip_fit", dropped)
