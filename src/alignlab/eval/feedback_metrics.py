"""Diagnostics of the feedback data itself: rating/ranking consistency (Bansal et al. 2023), linear separability of
chosen vs rejected (the "More is Less" diagnostic, 2025) and output diversity (Kirk et al. 2023)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.eval.inputs import check_finite, invalid_report
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import Estimate, MetricResult, mean_estimate, proportion_estimate

RANKED = {"a": 1, "b": -1, "tie": 0, 1: 1, -1: -1, 0: 0, "model_a": 1, "model_b": -1}


@register_metric(
    "rating_ranking_consistency",
    paper="Bansal et al. 2023, Peering Through Preferences (arXiv 2308.15812)",
    inputs="feedback",
    checked="Bansal et al. 2023 abstract and §4 (unverified in code): derived = sign(rating_a − rating_b)",
)
def rating_ranking_consistency(
    *, rating_a: Sequence[float], rating_b: Sequence[float], ranked: Sequence[Any], on_invalid: str = "raise"
) -> MetricResult:
    """How often the preference derived from two ratings disagrees with the pairwise ranking of the same pair
    (with ties counted, and among pairs strict in both protocols)."""
    n = len(ranked)
    if not (len(rating_a) == len(rating_b) == n):
        raise MetricError(f"{len(rating_a)} rating_a, {len(rating_b)} rating_b and {n} ranked values")
    notes: list[str] = []
    bad = {i: f"ranked not a, b or tie ({r!r})" for i, r in enumerate(ranked) if r not in RANKED}
    drop = invalid_report("rankings", bad, n, on_invalid, notes)
    _, ka = check_finite(rating_a, "rating_a values", on_invalid, notes)
    _, kb = check_finite(rating_b, "rating_b values", on_invalid, notes)
    keep = np.array(sorted(set(ka) & set(kb) - drop), dtype=int)
    if keep.size == 0:
        raise MetricError("no valid rows")
    derived = np.sign(np.asarray(rating_a, float)[keep] - np.asarray(rating_b, float)[keep])
    rank = np.array([RANKED[ranked[i]] for i in keep], dtype=float)
    strict = (derived != 0) & (rank != 0)
    estimates = {"inconsistency_with_ties": proportion_estimate(derived != rank)}
    if strict.any():
        estimates["inconsistency_strict"] = proportion_estimate(derived[strict] != rank[strict])
    return MetricResult(
        "rating_ranking_consistency",
        estimates,
        {"n": int(keep.size), "strict_pairs": int(strict.sum()), "rating_ties": int((derived == 0).sum())},
        notes,
    )


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 100) -> np.ndarray:
    """Logistic regression with intercept and an L2 penalty (Newton's method); returns [w, b]."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = l2 * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(steps):
        q = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (q - y) + reg @ w
        hess = xb.T @ (xb * (q * (1 - q))[:, None]) + reg + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return w


@register_metric(
    "multimodel_separability",
    paper="'More is Less: The Pitfalls of Multi-Model Synthetic Preference Data in DPO Safety Alignment' (2025)",
    inputs="feedback",
    checked="abstract only (unverified): linear probe accuracy on frozen embeddings of chosen vs rejected",
)
def multimodel_separability(
    *,
    chosen_embeddings: Sequence[Sequence[float]],
    rejected_embeddings: Sequence[Sequence[float]],
    folds: int = 5,
    l2: float = 1e-2,
) -> MetricResult:
    """Cross-validated accuracy of a linear probe telling chosen from rejected responses by their embeddings
    (≈ 50% when the two come from one distribution; near 100% flags superficial, hackable differences)."""
    c, r = np.asarray(chosen_embeddings, float), np.asarray(rejected_embeddings, float)
    if c.ndim != 2 or c.shape != r.shape:
        raise MetricError(
            f"embeddings of shapes {c.shape} and {r.shape}; give one row per pair for each side"
        )
    n = len(c)
    if n < folds:
        raise MetricError(f"multimodel_separability needs at least {folds} pairs, got {n}")
    mean, std = np.vstack([c, r]).mean(0), np.vstack([c, r]).std(0) + 1e-12
    c, r = (c - mean) / std, (r - mean) / std
    fold = np.arange(n) % folds  # a pair's two sides stay in one fold
    correct = np.zeros(2 * n)
    for f in range(folds):
        tr, te = fold != f, fold == f
        w = fit_probe(np.vstack([c[tr], r[tr]]), np.concatenate([np.ones(tr.sum()), np.zeros(tr.sum())]), l2)
        for side, x, label in ((0, c[te], 1.0), (1, r[te], 0.0)):
            pred = (np.hstack([x, np.ones((len(x), 1))]) @ w > 0).astype(float)
            correct[side * n + np.flatnonzero(te)] = pred == label
    return MetricResult(
        "multimodel_separability",
        {"probe_accuracy": proportion_estimate(correct, 100.0)},
        {"folds": folds, "pairs": n, "chance": 50.0},
    )


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ead(texts: Sequence[str], n: int, vocab_size: int) -> float:
    """Expectation-adjusted distinct n-grams (Liu et al. 2022): distinct / (V·(1 − ((V − 1)/V)^C)), C = all n-grams."""
    grams = [g for t in texts for g in ngrams(t.split(), n)]
    if not grams:
        return 0.0
    expected = vocab_size * (1 - ((vocab_size - 1) / vocab_size) ** len(grams))
    return len(set(grams)) / expected


def cosine_diversity(embeddings: np.ndarray) -> float:
    """1 − mean pairwise cosine similarity (over distinct pairs)."""
    e = np.asarray(embeddings, float)
    e = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12)
    sim = e @ e.T
    k = len(e)
    return float(1 - (sim.sum() - np.trace(sim)) / (k * (k - 1)))


@register_metric(
    "rlhf_diversity_metrics",
    paper="Kirk et al. 2023, Understanding the Effects of RLHF on LLM Generalisation and Diversity (arXiv 2310.06452)",
    inputs="feedback",
    checked="Kirk et al. 2023 §3: EAD averaged over n = 1..5 (Liu et al. 2022), 1 − mean pairwise cosine of "
    "sentence embeddings; NLI diversity as facebookresearch/rlfh-gen-div rlvsil/diversity/similarity_metrics.py "
    "NLISimilarity and metric.py Similarity2DiversityMetric (read with the fetch tool)",
)
def rlhf_diversity_metrics(
    *,
    samples: Sequence[Sequence[str]],
    embeddings: Sequence[Sequence[Sequence[float]]] | None = None,
    max_n: int = 5,
    vocab_size: int | None = None,
    seed: int = 0,
    nli: Any = None,
    nli_model: str | None = None,
    nli_entailment: str = "entailment",
    nli_contradiction: str = "contradiction",
    nli_neutral: str | None = "neutral",
) -> MetricResult:
    """Per-input diversity (across the K samples of one prompt) and across-input diversity (K outputs of K
    different prompts, one random set per prompt): EAD averaged over n = 1..max_n, cosine diversity of
    embeddings when given, and NLI diversity (``alignlab.eval.nli``: ``nli_score`` = mean over pairs of the
    top label's probability × (+1 contradiction, 0 neutral, −1 entailment), both directions summed, and the
    official ``nli_from_sim`` = 1 − that) when an NLI classifier (``nli``, a callable) or a saved
    sequence-classification model (``nli_model``, with its label names) is given."""
    if not samples or any(len(s) < 2 for s in samples):
        raise MetricError("rlhf_diversity_metrics needs at least 2 samples for every prompt")
    empty = [i for i, group in enumerate(samples) for t in group if not str(t).strip()]
    notes = (
        [f"{len(empty)} empty samples (prompts {sorted(set(empty))[:10]}) count as no n-grams"]
        if empty
        else []
    )
    vocab = vocab_size or max(2, len(Counter(w for group in samples for t in group for w in str(t).split())))
    score = lambda texts: float(np.mean([ead(texts, n, vocab) for n in range(1, max_n + 1)]))  # noqa: E731
    per_input = np.array([score(list(group)) for group in samples])
    estimates: dict[str, Estimate] = {"per_input_ead": mean_estimate(per_input)}
    k = len(samples[0])
    sets: list[list[str]] = []
    if len(samples) >= k:
        # Across inputs: sets of k outputs of k different prompts (the size of a per-input set), one per prompt.
        rng = np.random.default_rng(seed)
        sets = [
            [samples[i][0] for i in rng.choice(len(samples), k, replace=False)] for _ in range(len(samples))
        ]
        estimates["across_input_ead"] = mean_estimate([score(s) for s in sets])
    if embeddings is not None:
        cos = np.array([cosine_diversity(np.asarray(e)) for e in embeddings])
        estimates["per_input_cosine_diversity"] = mean_estimate(cos)
    if nli is None and nli_model is not None:
        from alignlab.eval.nli import load_nli_classifier

        nli = load_nli_classifier(nli_model, nli_entailment, nli_contradiction, nli_neutral)
    if nli is not None:
        from alignlab.eval.nli import nli_score

        for where, groups in (("per_input", samples), ("across_input", sets)):
            if groups:
                values = np.array([nli_score(nli, [str(t) for t in g]) for g in groups])
                estimates[f"{where}_nli_score"] = mean_estimate(values)
                estimates[f"{where}_nli_from_sim"] = mean_estimate(1.0 - values)
    return MetricResult("rlhf_diversity_metrics", estimates, {"vocab_size": vocab, "max_n": max_n}, notes)
