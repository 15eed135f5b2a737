"""A judge's accuracy split by which answer of each pair is the shorter: does it know more than length?

In HH-RLHF and many preference sets the chosen answer is more often the shorter (or the longer) one, so a
judge, a reward model or a DPO policy's implicit reward can beat chance by reading length alone (Singhal et
al. 2023, "A Long Way to Go: Investigating Length Correlations in RLHF", arXiv 2310.03716, section 3: a
length-only reward matches much of the learned reward's effect). With correct_i = 1[p_i > ½] (½ for
p_i = ½) and ℓ the lengths in characters, the pairs split into

    S = {i : ℓ(chosen_i) < ℓ(rejected_i)}   (where "prefer the shorter" is right)
    L = {i : ℓ(chosen_i) > ℓ(rejected_i)}   (where it is wrong)

    chosen_shorter = mean_{i∈S} correct_i,   chosen_longer = mean_{i∈L} correct_i,
    balanced = ½ (chosen_shorter + chosen_longer),   SE(balanced) = ½ √(SE_S² + SE_L²)

(each SE the standard error of a mean, the two groups independent). ``balanced`` is the length-controlled
accuracy: the rule "prefer the shorter answer" (or "the longer") scores ½ on it (1 on one group, 0 on the
other) whatever the share of shorter chosen answers; ``shorter_rule`` is that rule's plain accuracy on the same
pairs (ties ½), the figure to beat. A judge that reads length another way (a margin that grows with the length
gap) can land off ½ when the two groups' gaps differ, so read ``balanced`` beside the two group figures. Pairs of equal length are counted and left out of the split. Checked: elementary (a stratified
mean); the grouping follows the paper's length-stratified analysis, not code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from alignlab.eval.inputs import check_range
from alignlab.eval.registry import register_metric
from alignlab.eval.uncertainty import Estimate, MetricResult, mean_estimate


@register_metric(
    "accuracy_by_length",
    paper="Singhal et al. 2023, A Long Way to Go: Investigating Length Correlations in RLHF (arXiv 2310.03716)",
    inputs="pairs",
    checked="elementary stratified mean (module docstring); no official code",
)
def accuracy_by_length(
    *,
    p_chosen: Sequence[float],
    chosen_lengths: Sequence[float],
    rejected_lengths: Sequence[float],
    on_invalid: str = "raise",
) -> MetricResult:
    """Accuracy where the chosen answer is the shorter, where it is the longer, their mean, and the
    shorter-answer rule's accuracy on the same pairs."""
    if not len(p_chosen) == len(chosen_lengths) == len(rejected_lengths):
        raise ValueError(
            f"accuracy_by_length: {len(p_chosen)} predictions, {len(chosen_lengths)} chosen and "
            f"{len(rejected_lengths)} rejected lengths; give one of each per pair"
        )
    notes: list[str] = []
    p, keep = check_range(list(p_chosen), "predictions P(chosen ≻ rejected)", 0.0, 1.0, on_invalid, notes)
    lc = np.asarray(chosen_lengths, dtype=float)[keep]
    lr = np.asarray(rejected_lengths, dtype=float)[keep]
    correct = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
    shorter, longer = lc < lr, lc > lr
    estimates: dict[str, Estimate] = {}
    for name, group in (("chosen_shorter", shorter), ("chosen_longer", longer)):
        if group.any():
            estimates[name] = mean_estimate(correct[group])
        else:
            notes.append(f"no pair whose chosen answer is the {name.split('_')[1]}: {name} not computed")
    if len(estimates) == 2:
        a, b = estimates["chosen_shorter"], estimates["chosen_longer"]
        se = 0.5 * math.sqrt(a.se**2 + b.se**2) if a.n > 1 and b.n > 1 else float("nan")
        estimates["balanced"] = Estimate(0.5 * (a.value + b.value), se, n=int(shorter.sum() + longer.sum()))
    rule = np.where(shorter, 1.0, np.where(longer, 0.0, 0.5))
    estimates["shorter_rule"] = mean_estimate(rule)
    equal = int(len(p) - shorter.sum() - longer.sum())
    if equal:
        notes.append(f"{equal} of {len(p)} pairs have answers of equal length: left out of the split")
    details = {"n_chosen_shorter": int(shorter.sum()), "n_chosen_longer": int(longer.sum()), "n_equal": equal}
    return MetricResult("accuracy_by_length", estimates, details, notes)
