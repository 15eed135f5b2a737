"""A reward model or judge on labelled pairs: the figures of ``alignlab eval judge`` (and its alias ``rm eval``).

Scores every ranked pair of the records once (a judge without scalar scores in both orders, averaged), then
runs the registered metrics that read pairs: accuracy with its SE, ``ece`` (bootstrap interval),
``accuracy_by_length`` (where the chosen answer is the shorter / the longer, and the shorter-answer rule's
accuracy beside it), ``rewardbench`` (when subsets are named, or sections given). NaN or
infinite rewards are reported by record (``on_invalid``): before this module they silently counted as wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignlab.data.records import Record
from alignlab.eval.calibration import ece
from alignlab.eval.inputs import invalid_report
from alignlab.eval.length_accuracy import accuracy_by_length
from alignlab.eval.rewardbench import SUBSET_MAPPING, rewardbench
from alignlab.eval.rm_metrics import RMEvalResult, pair_probabilities, pairs_of, summarize
from alignlab.eval.uncertainty import MetricResult, mean_estimate


@dataclass
class PairScores:
    prompts: list[Any]
    chosen: list[str]
    rejected: list[str]
    subsets: list[str]
    p_chosen: np.ndarray
    chosen_rewards: np.ndarray | None = None
    rejected_rewards: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def score_pairs(judge: Any, records: Sequence[Record], on_invalid: str = "raise") -> PairScores:
    """P(chosen ≻ rejected) for every ranked pair (and both rewards for scalar judges); bad scores reported."""
    prompts, chosen, rejected, subsets = pairs_of(records)
    n = len(prompts)
    notes: list[str] = []
    p, cw, cl = pair_probabilities(judge, prompts, chosen, rejected, notes)
    if cw is not None and cl is not None:
        bad = {}
        for i in range(n):
            for side, value in (("chosen", cw[i]), ("rejected", cl[i])):
                if not np.isfinite(value):
                    bad[i] = f"{'NaN' if np.isnan(value) else 'infinite'} reward of the {side} completion"
    else:
        bad = {i: "P(chosen ≻ rejected) not in [0, 1]" for i in range(n) if not 0.0 <= p[i] <= 1.0}
    drop = invalid_report("pairs", bad, n, on_invalid, notes)
    keep = [i for i in range(n) if i not in drop]
    if not keep:
        raise ValueError(f"no valid pairs left (all {n} had invalid scores)")
    pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
    return PairScores(
        pick(prompts),
        pick(chosen),
        pick(rejected),
        pick(subsets),
        p[keep],
        None if cw is None else cw[keep],
        None if cl is None else cl[keep],
        notes,
    )


def evaluate_pairs(
    judge: Any,
    records: Sequence[Record],
    sections: Mapping[str, Sequence[str]] | None = None,
    n_bins: int = 10,
    on_invalid: str = "raise",
    rounds: int = 1000,
) -> tuple[RMEvalResult, dict[str, MetricResult], list[str]]:
    """(the summary ``rm eval`` always printed, the registered metrics with uncertainty, notes)."""
    s = score_pairs(judge, records, on_invalid)
    official = {x for v in SUBSET_MAPPING.values() for x in v}
    # RewardBench's sections: the given ones, else RewardBench's own when the subsets carry its names.
    mapping = {k: list(v) for k, v in (sections or {}).items()} or (
        dict(SUBSET_MAPPING) if set(s.subsets) & official else None
    )
    summary = summarize(s.p_chosen, s.subsets, mapping, s.chosen_rewards, s.rejected_rewards, n_bins)
    correct = np.where(s.p_chosen > 0.5, 1.0, np.where(s.p_chosen == 0.5, 0.5, 0.0))
    metrics: dict[str, MetricResult] = {
        "accuracy": MetricResult("accuracy", {"accuracy": mean_estimate(correct)}, {"ties": "count ½"}),
        "ece": ece(p_chosen=s.p_chosen, n_bins=n_bins, rounds=rounds),
        "accuracy_by_length": accuracy_by_length(
            p_chosen=s.p_chosen,
            chosen_lengths=[len(c) for c in s.chosen],
            rejected_lengths=[len(r) for r in s.rejected],
        ),
    }
    if mapping:
        kwargs: dict[str, Any] = {"subsets": s.subsets, "sections": mapping}
        if s.chosen_rewards is not None:
            kwargs.update(chosen_scores=s.chosen_rewards, rejected_scores=s.rejected_rewards)
        else:
            kwargs["p_chosen"] = s.p_chosen
        metrics["rewardbench"] = rewardbench(**kwargs)
    return summary, metrics, s.notes
