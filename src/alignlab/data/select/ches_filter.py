"""CHES filtering (Razin et al. 2024, "Unintentional Unalignment: Likelihood Displacement in Direct
Preference Optimization", arXiv 2410.08847): drop the preference pairs whose preferred and dispreferred
responses look most alike to the model, the pairs that cause likelihood displacement in DPO.

CHES_x(y⁺, y⁻) = ⟨h_{y⁺}, h_{y⁻}⟩ − ‖h_{y⁺}‖², with h_y = Σ_{k=1}^{|y|} h_{x, y<k} the sum of the model's
last hidden states over the positions that predict y's tokens (length-normalised variant:
⟨h_{y⁺}, h_{y⁻}⟩/(|y⁺||y⁻|) − ‖h_{y⁺}‖²/|y⁺|²). The filter removes the top-q fraction by CHES.
Checked: METHODS.md `ches` and `ches_filter` blocks (the paper's definition as recalled; Eq. of CHES in
section 5); the hidden states are computed by :func:`alignlab.recipes.curation.select.ches_values`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignlab.data.records import Record
from alignlab.data.select.base import Selection, select_indices
from alignlab.data.tools import register_tool


def ches(h_chosen: np.ndarray, h_rejected: np.ndarray, n_chosen: int = 1, n_rejected: int = 1) -> float:
    """CHES from the summed hidden states of the two responses (pass the token counts for the
    length-normalised variant)."""
    a, b = np.asarray(h_chosen, np.float64), np.asarray(h_rejected, np.float64)
    return float(a @ b / (n_chosen * n_rejected) - a @ a / n_chosen**2)


@register_tool(
    "ches_filter",
    kind="select",
    paper="Razin et al. 2024 'Unintentional Unalignment: Likelihood Displacement in DPO' (arXiv 2410.08847)",
    test="tests/data/test_select.py::test_ches_*: q=0 keeps everything; CHES=0 for y-=y+; planted near-identical pairs flagged",
    checked="METHODS.md ches / ches_filter blocks (paper recall)",
)
def ches_filter(records: Sequence[Record], ches_values: Sequence[float], q: float = 0.05) -> Selection:
    """Remove the ``q`` fraction (rounded up) of pairs with the highest CHES; q = 0 keeps every record."""
    if not 0 <= q <= 1:
        raise ValueError(f"ches_filter: q must be a fraction in [0, 1], got {q}")
    values = np.asarray(ches_values, dtype=np.float64)
    if values.shape != (len(records),):
        raise ValueError("ches_filter: one CHES value per record")
    cut = math.ceil(q * len(records) - 1e-9)
    order = np.argsort(-values, kind="stable")
    removed = set(order[:cut].tolist())
    keep = [i for i in range(len(records)) if i not in removed]
    dropped = Counter({f"CHES in the top {q:.0%}": cut} if cut else {})
    return select_indices(records, keep, values.tolist(), "ches_filter", dropped)
