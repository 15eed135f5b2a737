"""Position-swapped AI preferences averaged symmetrically, and agreement with existing labels.

An AI judge asked "which is better, A or B?" favours one position. RLAIF (Lee et al. 2023, arXiv
2309.00267, section 2.1.1 "Addressing Position Bias") and Constitutional AI (Bai et al. 2022) ask in both
orders and average:

    p(a ≻ b) = ½ [ P(a ≻ b | a shown first) + 1 − P(b ≻ a | b shown first) ]

so p(a ≻ b) + p(b ≻ a) = 1 exactly, whatever the judge's position bias. The position bias itself is
½ [P(first wins | a, b) + P(first wins | b, a)] − ½ (0 for an unbiased judge). Checked: METHODS.md
`rlaif_labeler` block (its test is this identity) and the RLAIF paper's position-bias section as recalled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alignlab.data.records import Record
from alignlab.data.tools import register_tool


def symmetric_preference(p_ab: Sequence[float], p_ba: Sequence[float]) -> np.ndarray:
    """½ [P(a ≻ b | a first) + 1 − P(b ≻ a | b first)] per pair, computed so that swapping the two answers
    gives exactly 1 − p in floating point: with d = P_ab − P_ba, p = ½ + ½d for d ≥ 0 and 1 − (½ + ½|d|)
    otherwise (1 − g is exact for g ∈ [½, 1], so p(a ≻ b) + p(b ≻ a) == 1 holds bit for bit)."""
    d = np.asarray(p_ab, np.float64) - np.asarray(p_ba, np.float64)
    upper = 0.5 + 0.5 * np.abs(d)
    return np.where(d >= 0, upper, 1.0 - upper)


def position_bias(p_ab: Sequence[float], p_ba: Sequence[float]) -> float:
    """Mean P(the first shown wins) − ½ over both orders: 0 for a judge without position bias."""
    a, b = np.asarray(p_ab, np.float64), np.asarray(p_ba, np.float64)
    return float(np.mean(0.5 * (a + b)) - 0.5) if len(a) else 0.0


@dataclass
class Agreement:
    """How AI labels compare with existing ones on the pairs that have both (ties left out)."""

    pairs: int
    agree: int
    cohen_kappa: float
    position_bias: float
    order_flips: int  # pairs whose verdict changes with the order (before averaging)

    @property
    def rate(self) -> float:
        return self.agree / self.pairs if self.pairs else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {
            "pairs": self.pairs,
            "agree": self.agree,
            "agreement": round(self.rate, 4),
            "cohen_kappa": round(self.cohen_kappa, 4),
            "position_bias": round(self.position_bias, 4),
            "order_flips": self.order_flips,
        }


def agreement(
    ai: Sequence[float], human: Sequence[bool | None], p_ab: Sequence[float], p_ba: Sequence[float]
) -> Agreement:
    """Agreement of ``ai`` = p(first ≻ second) with ``human`` = first preferred (None: no label), Cohen's κ
    over the two binary raters, the judge's position bias and how many pairs flip with the order."""
    rows = [(bool(p > 0.5), bool(h)) for p, h in zip(ai, human) if h is not None and p != 0.5]
    n = len(rows)
    agree = sum(a == h for a, h in rows)
    if n:
        pa, ph = sum(a for a, _ in rows) / n, sum(h for _, h in rows) / n
        expected = pa * ph + (1 - pa) * (1 - ph)
        kappa = (agree / n - expected) / (1 - expected) if expected < 1 else 1.0
    else:
        kappa = float("nan")
    flips = int(sum((x > 0.5) != (1 - y > 0.5) for x, y in zip(p_ab, p_ba)))
    return Agreement(n, int(agree), float(kappa), position_bias(p_ab, p_ba), flips)


def existing_preference(record: Record) -> bool | None:
    """Whether a K = 2 record's existing ranking prefers its first completion (None: no ranking or a tie)."""
    if record.ranking is None or record.k != 2 or record.ranking[0] == record.ranking[1]:
        return None
    return record.ranking[0] < record.ranking[1]


@register_tool(
    "rlaif_labeler",
    kind="label",
    paper="Bai et al. 2022 'Constitutional AI' (arXiv 2212.08073); Lee et al. 2023 'RLAIF' (arXiv 2309.00267)",
    test="tests/data/test_label.py::test_symmetric_*: p(a>b)+p(b>a)=1 exactly; position-biased judge averaged; "
    "tests/recipes/test_curation.py::test_label_* (judge run in both orders)",
    checked="METHODS.md rlaif_labeler block; RLAIF section 2.1.1 (position bias) as recalled",
)
def label_pairs(
    records: Sequence[Record], p_ab: Sequence[float], p_ba: Sequence[float], tie_band: float = 0.0
) -> list[Record]:
    """K = 2 records ranked by the symmetric AI preference: first ≻ second when p > ½ + ``tie_band``,
    the reverse below ½ − ``tie_band``, a tie between. ``extras["ai_preference"]`` = p, and
    ``meta["ai_p_ab"]``, ``meta["ai_p_ba"]`` keep both orders' raw answers."""
    import dataclasses

    p = symmetric_preference(p_ab, p_ba)
    out = []
    for record, value, x, y in zip(records, p.tolist(), p_ab, p_ba):
        ranking = [0, 1] if value > 0.5 + tie_band else [1, 0] if value < 0.5 - tie_band else [0, 0]
        meta = {**record.meta, "ai_p_ab": float(x), "ai_p_ba": float(y)}
        if record.ranking is not None:
            meta["previous_ranking"] = list(record.ranking)
        out.append(
            dataclasses.replace(
                record, ranking=ranking, extras={**record.extras, "ai_preference": value}, meta=meta
            )
        )
    return out
