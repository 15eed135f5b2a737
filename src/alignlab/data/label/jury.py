"""Jury labelling (Aegis 2.0, Ghosh et al. 2025, arXiv 2501.09004): K LLM judges label each response
(safe/unsafe, or a category of a taxonomy), the label is the majority vote, and items the jury does not
agree on are escalated to people.

For each item: votes v_1..v_K; label = the most common vote (ties broken towards ``tie_label`` when
given, else escalated); escalate when the top vote's share is below ``min_agreement`` (default: any
disagreement, i.e. only unanimous items are settled by the jury). Checked: METHODS.md `aegis_jury` block
(abstract; the 12 + 9 category taxonomy is the caller's label set, not built in).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from alignlab.data.tools import register_tool


@dataclass
class JuryVerdict:
    label: Hashable | None  # None when escalated without a majority
    share: float  # fraction of the jury that voted for the label
    escalate: bool
    votes: list[Hashable]


@register_tool(
    "aegis_jury",
    kind="label",
    paper="Ghosh et al. 2025 'Aegis2.0: A Diverse AI Safety Dataset and Risks Taxonomy' (arXiv 2501.09004)",
    test="tests/data/test_label.py::test_jury_*: unanimous votes never escalated; split votes escalated",
    checked="METHODS.md aegis_jury block (abstract)",
)
def jury_verdicts(votes: Sequence[Sequence[Hashable]], min_agreement: float = 1.0) -> list[JuryVerdict]:
    """One verdict per item from its jury's ``votes``; escalated when the majority share < ``min_agreement``
    or the top votes tie."""
    out = []
    for item in votes:
        if not item:
            raise ValueError("aegis_jury: every item needs at least one vote")
        counts = Counter(item).most_common()
        top, n = counts[0]
        tied = len(counts) > 1 and counts[1][1] == n
        share = n / len(item)
        escalate = tied or share < min_agreement
        out.append(JuryVerdict(None if tied else top, share, escalate, list(item)))
    return out
