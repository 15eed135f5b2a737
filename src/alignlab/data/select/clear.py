"""CLEAR confidence-based curation (Zhou et al. 2024, "Automated Data Curation for Robust Language Model
Fine-Tuning", arXiv 2403.12776): keep the rows an LLM is confident are good, correct the ones it is
confident are wrong, drop the rest.

For SFT rows the confidence c_i ∈ [0, 1] is that the response is good (BSDetector-style: a judge's score
mapped to a probability, or self-consistency); rows with c_i < threshold are dropped. For preference pairs
alignlab uses c_i = P(chosen ≻ rejected) from an AI judge averaged over both orders (position bias
removed, :mod:`alignlab.data.label.symmetric`): c_i < threshold flags the label, and with ``correct=True``
a pair the judge confidently reverses (c_i ≤ 1 − correct_threshold) is kept with its label flipped (the
paper's "auto-correct" step, applied to labels instead of rewritten responses). Checked: METHODS.md
`clear_curation` block and the paper's abstract (filter + correct); the mapping to pairs is alignlab's.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignlab.data.records import Record
from alignlab.data.select.base import Selection, select_indices
from alignlab.data.tools import register_tool


@register_tool(
    "clear_curation",
    kind="select",
    paper="Zhou et al. 2024 'Automated Data Curation for Robust Language Model Fine-Tuning' (CLEAR, arXiv 2403.12776)",
    test="tests/data/test_select.py::test_clear_*: all-confident data passes unchanged; planted flips found",
    checked="METHODS.md clear_curation block (abstract); pair confidence = symmetric AI preference",
)
def clear_curation(
    records: Sequence[Record],
    confidence: Sequence[float],
    threshold: float = 0.5,
    correct: bool = False,
    correct_threshold: float = 0.9,
) -> Selection:
    """Keep records with confidence ≥ ``threshold``; with ``correct``, flip pairs confidently reversed."""
    values = np.asarray(confidence, dtype=np.float64)
    if values.shape != (len(records),) or not np.all((values >= 0) & (values <= 1)):
        raise ValueError("clear_curation: one confidence in [0, 1] per record")
    out = list(records)
    keep, dropped = [], Counter()
    for i, (record, c) in enumerate(zip(records, values.tolist())):
        if c >= threshold:
            keep.append(i)
        elif correct and record.ranking is not None and record.k == 2 and c <= 1 - correct_threshold:
            out[i] = dataclasses.replace(
                record, ranking=list(reversed(record.ranking)), meta={**record.meta, "clear_flipped": True}
            )
            keep.append(i)
        else:
            dropped[f"confidence below {threshold}"] += 1
    selection = select_indices(out, keep, values.tolist(), "clear_curation", dropped)
    flipped = sum(1 for i in keep if out[i] is not records[i])
    if flipped:
        selection.name = f"clear_curation ({flipped} labels flipped)"
    return selection
