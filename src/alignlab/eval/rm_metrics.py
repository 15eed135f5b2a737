"""Reward-model evaluation: pairwise accuracy (overall, by subset, RewardBench's sections and score), expected
calibration error with a reliability diagram, and the reward distributions of chosen vs rejected.

Accuracy counts a pair as correct when P(chosen ≻ rejected) > 1/2 (r_w > r_l for scalar judges), half
when it is exactly 1/2 (a tie), wrong otherwise. Calibration treats every pair in both orders: the
prediction p = P(chosen ≻ rejected) with outcome 1 and 1 − p with outcome 0, so a model that always says
1/2 is perfectly calibrated and one that is always certain is penalised by its error rate. ECE uses
equal-width bins: Σ_b (n_b/n)·|mean outcome_b − mean prediction_b|.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.data.records import Record
from alignlab.eval.rewardbench import rewardbench


def pair_correctness(p_chosen: np.ndarray) -> np.ndarray:
    """1 if p > 1/2, 0.5 if p == 1/2, 0 otherwise (ties count as half, as RewardBench counts a generative judge's
    tie; the ``rewardbench`` metric is strict only for scalar rewards, ``r(chosen) > r(rejected)``)."""
    p = np.asarray(p_chosen, dtype=float)
    return np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))


def expected_calibration_error(
    p_chosen: np.ndarray, n_bins: int = 10
) -> tuple[float, list[dict[str, float]]]:
    """(ECE, bins) for predictions P(chosen ≻ rejected), every pair counted in both orders."""
    p = np.asarray(p_chosen, dtype=float)
    preds = np.concatenate([p, 1.0 - p])
    outcomes = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges[1:-1], preds, side="right"), 0, n_bins - 1)
    ece, bins = 0.0, []
    for b in range(n_bins):
        sel = index == b
        if not sel.any():
            continue
        conf, freq = float(preds[sel].mean()), float(outcomes[sel].mean())
        ece += sel.sum() / len(preds) * abs(freq - conf)
        bins.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "n": int(sel.sum()),
                "mean_prediction": conf,
                "frequency": freq,
            }
        )
    return float(ece), bins


def rewardbench_sections(
    subsets: Sequence[str],
    sections: dict[str, list[str]],
    p_chosen: np.ndarray,
    chosen_rewards: np.ndarray | None = None,
    rejected_rewards: np.ndarray | None = None,
) -> tuple[dict[str, float], float | None]:
    """(section scores, overall score) as fractions, exactly as RewardBench computes them: the ``rewardbench``
    metric (alignlab/eval/rewardbench.py, divided by 100), so ``rm eval``'s ``sections``/``score`` and its
    ``rewardbench`` metric are one computation.

    Section = Σ_s w_s·acc_s / Σ_s w_s over the section's subsets in the data, w_s RewardBench's official
    example count (math-prm 984) or, for a subset not in RewardBench, its number of pairs (allenai/reward-bench
    rewardbench/utils.py ``calculate_scores_per_section``); per pair, a scalar reward counts 1[r_w > r_l]
    (a tie 0) and a preference judge 1 / ½ / 0 (rewardbench/rewardbench.py ``main``,
    scripts/run_generative.py). Score = Σ_k v_k·x_k / Σ_k v_k with v = 2 for each section and v = 1 for the
    mean of the prior sets present (anthropic_helpful, anthropic_hhh, shp, summarize) — the leaderboard's
    ``np.ma.average(..., weights=[2, 2, 2, 2, 1])`` in analysis/get_benchmark_results.py
    ``get_average_over_rewardbench``, read at allenai/reward-bench 05a9005 with the fetch tool. Without prior
    sets the score is the plain mean of the sections present; a section with no subset in the data is left
    out (the official per-section function would write 0 for it). None when no section is present."""
    kwargs: dict[str, Any] = {"subsets": list(subsets), "sections": sections}
    if chosen_rewards is not None and rejected_rewards is not None:
        kwargs.update(chosen_scores=chosen_rewards, rejected_scores=rejected_rewards)
    else:
        kwargs["p_chosen"] = p_chosen
    metric = rewardbench(**kwargs)
    prefix = "section/"
    found = {k[len(prefix) :]: v.value / 100 for k, v in metric.estimates.items() if k.startswith(prefix)}
    score = metric.estimates.get("score")
    return found, None if score is None else score.value / 100


@dataclass
class RMEvalResult:
    accuracy: float
    n: int
    ece: float
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    sections: dict[str, float] = field(default_factory=dict)
    score: float | None = None  # RewardBench's score of the sections (rewardbench_sections), a fraction
    bins: list[dict[str, float]] = field(default_factory=list)
    rewards: dict[str, dict[str, float]] = field(default_factory=dict)
    p_chosen: np.ndarray | None = None
    chosen_rewards: np.ndarray | None = None
    rejected_rewards: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"accuracy": self.accuracy, "n": self.n, "ece": self.ece}
        out["subsets"] = self.subsets
        out["subset_accuracy"] = {k: v["accuracy"] for k, v in self.subsets.items()}
        if self.sections:
            out["sections"] = self.sections
            out["score"] = self.score
        out["reward_distribution"] = self.rewards
        out["calibration_bins"] = self.bins
        return out


def summarize(
    p_chosen: np.ndarray,
    subsets: Sequence[str] | None = None,
    sections: dict[str, list[str]] | None = None,
    chosen_rewards: np.ndarray | None = None,
    rejected_rewards: np.ndarray | None = None,
    n_bins: int = 10,
) -> RMEvalResult:
    """All metrics from per-pair predictions (and, for scalar judges, the two rewards)."""
    p = np.asarray(p_chosen, dtype=float)
    if p.size == 0:
        raise ValueError("no pairs to evaluate")
    correct = pair_correctness(p)
    ece, bins = expected_calibration_error(p, n_bins)
    result = RMEvalResult(float(correct.mean()), int(p.size), ece, bins=bins, p_chosen=p)
    if subsets is not None:
        names = np.asarray(list(subsets))
        for name in sorted(set(names.tolist())):
            sel = names == name
            result.subsets[name] = {"accuracy": float(correct[sel].mean()), "n": int(sel.sum())}
        if sections:
            result.sections, result.score = rewardbench_sections(
                names.tolist(), sections, p, chosen_rewards, rejected_rewards
            )
    if chosen_rewards is not None and rejected_rewards is not None:
        cw, cl = np.asarray(chosen_rewards, float), np.asarray(rejected_rewards, float)
        result.chosen_rewards, result.rejected_rewards = cw, cl
        result.rewards = {
            name: {
                "mean": float(v.mean()),
                "std": float(v.std()),
                "min": float(v.min()),
                "max": float(v.max()),
            }
            for name, v in (("chosen", cw), ("rejected", cl), ("margin", cw - cl))
        }
    return result


def pairs_of(records: Sequence[Record]) -> tuple[list[Any], list[str], list[str], list[str]]:
    """(prompts, chosen, rejected, subset) of every strictly ordered pair of each record (ties give no pair)."""
    prompts, chosen, rejected, subsets = [], [], [], []
    for r in records:
        if r.ranking is None:
            continue
        for i in range(len(r.completions)):
            for j in range(len(r.completions)):
                if r.ranking[i] < r.ranking[j]:
                    prompts.append(r.prompt)
                    chosen.append(r.completions[i])
                    rejected.append(r.completions[j])
                    subsets.append(str(r.meta.get("subset") or r.source or "all"))
    if not prompts:
        raise ValueError(
            "the data has no ranked pairs (records need a ranking with at least two distinct ranks)"
        )
    return prompts, chosen, rejected, subsets


def evaluate_judge(
    judge: Any, records: Sequence[Record], sections: dict[str, list[str]] | None = None, n_bins: int = 10
) -> RMEvalResult:
    """Accuracy/ECE/reward distribution of ``judge`` on the pairs of ``records`` (subset = meta.subset or source)."""
    prompts, chosen, rejected, subsets = pairs_of(records)
    p, cw, cl = pair_probabilities(judge, prompts, chosen, rejected)
    return summarize(p, subsets, sections, cw, cl, n_bins)


def pair_probabilities(
    judge: Any,
    prompts: list[Any],
    chosen: list[str],
    rejected: list[str],
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(P(chosen ≻ rejected), chosen rewards, rejected rewards) per pair. A scalar judge scores both sides and
    p = σ(r_chosen − r_rejected) (Bradley-Terry); a judge without scalar scores (an LM asked "A or B?") is
    asked in both orders and p is their symmetric average, so its position bias cannot pass for accuracy
    (the data lists the chosen answer first); no rewards (None). The position bias and the pairs whose
    verdict flips with the order go to ``notes``."""
    n = len(prompts)
    try:
        scores = judge.score(prompts + prompts, chosen + rejected)
    except NotImplementedError:
        scores = None
    if scores is None or scores.dim() != 1:
        return preference_both_orders(judge, prompts, chosen, rejected, notes), None, None
    cw, cl = scores[:n].double().numpy(), scores[n:].double().numpy()
    # Exact ties must stay exactly 1/2 (np.exp rounding could move them).
    return np.where(cw == cl, 0.5, 1.0 / (1.0 + np.exp(-(cw - cl)))), cw, cl


def preference_both_orders(
    judge: Any, prompts: list[Any], chosen: list[str], rejected: list[str], notes: list[str] | None = None
) -> np.ndarray:
    """p = ½ [P(chosen ≻ rejected | chosen shown first) + 1 − P(rejected ≻ chosen | rejected shown first)]
    (RLAIF's position-debiased preference, :mod:`alignlab.data.label.symmetric`), one ``prefer_many`` call."""
    from alignlab.data.label.symmetric import position_bias, symmetric_preference

    n = len(prompts)
    both = judge.prefer_many(prompts + prompts, chosen + rejected, rejected + chosen).double().numpy()
    if both.shape != (2 * n,):
        raise ValueError(
            f"{type(judge).__name__}.prefer_many returned {both.shape} values for {2 * n} pairs (both orders "
            f"of {n}); it must return one P(a ≻ b) per pair"
        )
    p_ab, p_ba = both[:n], both[n:]
    if notes is not None:
        bias = position_bias(p_ab, p_ba)
        flips = int(np.sum((p_ab > 0.5) != (p_ba < 0.5)))
        if abs(bias) > 1e-9 or flips:
            notes.append(
                f"the judge was asked in both orders and the two averaged: position bias "
                f"{bias:+.3f} (mean P(the answer shown first wins) − ½); {flips} of {n} pairs change "
                "verdict with the order"
            )
    return symmetric_preference(p_ab, p_ba)


def plot_reliability(result: RMEvalResult, path: str | Path) -> Path:
    """A PNG with the reliability diagram and, for scalar judges, histograms of chosen vs rejected rewards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if result.chosen_rewards is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    xs = [b["mean_prediction"] for b in result.bins]
    ys = [b["frequency"] for b in result.bins]
    ax.plot(xs, ys, "o-", label=f"model (ECE {result.ece:.3f})")
    ax.set_xlabel("predicted P(first ≻ second)")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"reliability (accuracy {result.accuracy:.3f}, n={result.n})")
    ax.legend()
    if panels == 2:
        ax = axes[1]
        ax.hist(result.chosen_rewards, bins=30, alpha=0.6, label="chosen")
        ax.hist(result.rejected_rewards, bins=30, alpha=0.6, label="rejected")
        ax.set_xlabel("reward")
        ax.set_title("reward distribution")
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
