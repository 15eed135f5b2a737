"""Arena ratings: the Bradley–Terry fit of Chatbot Arena with bootstrap intervals, and its online Elo.

Battles (model_a, model_b, winner ∈ {model_a, model_b, tie, tie (bothbad)}), outcome y = 1, 0 or ½ (a tie is
half a win, half a loss). Natural ratings r maximise Σ_b y_b·log σ(ln10·(r_a − r_b)) + (1 − y_b)·log σ(ln10·(r_b −
r_a)), i.e. P(a beats b) = 1/(1 + 10^{−(r_a − r_b)}); reported Elo R = 400·r + 1000, so P(a beats b) = 1/(1 +
10^{(R_b − R_a)/400}). The likelihood fixes only differences; like FastChat's L-BFGS started at 0 (whose gradient
sums to 0), we keep mean(r) = 0, i.e. mean Elo 1000, unless ``anchor`` = {model: rating} pins one model.
Solved by Newton's method on the mean-zero subspace. Interval: 2.5/97.5 percentiles over ``rounds`` bootstrap
resamples of the battles (FastChat resamples the battles, ``get_bootstrap_result``, 1000 rounds); the same
resamples give intervals for every pairwise difference, so two models are called different only when the
interval of R_a − R_b excludes 0.

Online Elo (``method="online"``): R_a ← R_a + K·(S_a − E_a), E_a = 1/(1 + 10^{(R_b − R_a)/400}), K = 4, in
battle order from 1000 (FastChat ``compute_elo``); its bootstrap shuffles nothing but resamples battles.

checked: lm-sys/FastChat fastchat/serve/monitor/elo_analysis.py (compute_elo, preprocess_battles_to_arrays,
bt_loss_and_grad with alpha = ln 10, fit_bt L-BFGS-B, scale_and_offset 400·r + 1000, get_bootstrap_result),
read with the search tool; the fit is compared with scipy's L-BFGS-B on the same loss in tests/eval/test_elo.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alignlab.eval.inputs import invalid_report
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import Estimate, MetricResult, percentile_ci

LN10 = math.log(10.0)
OUTCOMES = {"model_a": 1.0, "a": 1.0, "model_b": 0.0, "b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def encode(
    model_a: Sequence[str], model_b: Sequence[str], winner: Sequence[Any], on_invalid: str, notes: list[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(model names, [n, 2] index pairs, outcomes) of the valid battles."""
    if not (len(model_a) == len(model_b) == len(winner)):
        raise MetricError(f"{len(model_a)} model_a, {len(model_b)} model_b and {len(winner)} winner values")
    bad = {}
    for i, (a, b, w) in enumerate(zip(model_a, model_b, winner)):
        if w not in OUTCOMES:
            bad[i] = f"winner not one of model_a, model_b, tie ({w!r})"
        elif a == b:
            bad[i] = "a model against itself"
    drop = invalid_report("battles", bad, len(winner), on_invalid, notes)
    keep = [i for i in range(len(winner)) if i not in drop]
    if not keep:
        raise MetricError("no valid battles")
    names = sorted({model_a[i] for i in keep} | {model_b[i] for i in keep})
    index = {m: k for k, m in enumerate(names)}
    pairs = np.array([[index[model_a[i]], index[model_b[i]]] for i in keep], dtype=int)
    return names, pairs, np.array([OUTCOMES[winner[i]] for i in keep], dtype=float)


def fit_bt(pairs: np.ndarray, y: np.ndarray, n_models: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Natural-scale ratings (mean 0) maximising the BT likelihood with base 10 (module docstring)."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    sign = np.zeros((len(y), n_models))
    sign[np.arange(len(y)), pairs[:, 0]] = 1.0
    sign[np.arange(len(y)), pairs[:, 1]] = -1.0
    x = LN10 * sign
    # Newton on the mean-zero subspace: basis of vectors orthogonal to 1.
    basis = np.linalg.qr(np.eye(n_models) - 1.0 / n_models)[0][:, : n_models - 1]
    z = x @ basis
    theta = np.zeros(n_models - 1)

    def nll(t: np.ndarray) -> float:
        logits = z @ t
        return float(np.sum(w * (y * np.logaddexp(0, -logits) + (1 - y) * np.logaddexp(0, logits))))

    current = nll(theta)
    for _ in range(200):
        q = 1 / (1 + np.exp(-(z @ theta)))
        grad = z.T @ (w * (q - y))
        hess = z.T @ (z * (w * q * (1 - q))[:, None]) + 1e-9 * np.eye(n_models - 1)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while nll(theta - t * step) > current + 1e-12 and t > 1e-10:
            t *= 0.5
        theta = theta - t * step
        new = nll(theta)
        if abs(current - new) < 1e-12 and np.max(np.abs(t * step)) < 1e-10:
            current = new
            break
        current = new
    return basis @ theta


def online_elo(pairs: np.ndarray, y: np.ndarray, n_models: int, k: float = 4.0) -> np.ndarray:
    """FastChat's ``compute_elo`` in battle order, ratings from 1000 (already on the Elo scale)."""
    rating = np.full(n_models, 1000.0)
    for (a, b), s in zip(pairs, y):
        ea = 1 / (1 + 10 ** ((rating[b] - rating[a]) / 400))
        rating[a] += k * (s - ea)
        rating[b] += k * ((1 - s) - (1 - ea))
    return rating


def to_elo(r: np.ndarray, names: list[str], anchor: Mapping[str, float] | None) -> np.ndarray:
    scaled = 400 * r + 1000
    if anchor:
        ((model, value),) = anchor.items()
        if model not in names:
            raise MetricError(f"anchor model '{model}' is in no battle; models: {', '.join(names)}")
        scaled = scaled + (value - scaled[..., names.index(model)])
    return scaled


@register_metric(
    "elo_bt",
    paper="Chiang et al. 2024, Chatbot Arena (arXiv 2403.04132); Bradley & Terry 1952",
    inputs="battles",
    checked="lm-sys/FastChat fastchat/serve/monitor/elo_analysis.py (fit_bt, scale_and_offset, get_bootstrap_result)",
)
def elo_bt(
    *,
    model_a: Sequence[str],
    model_b: Sequence[str],
    winner: Sequence[Any],
    method: str = "mle",
    anchor: Mapping[str, float] | None = None,
    k: float = 4.0,
    rounds: int = 200,
    seed: int = 0,
    on_invalid: str = "raise",
) -> MetricResult:
    """Arena ratings (Bradley–Terry MLE, or online Elo) with bootstrap intervals and pairwise verdicts."""
    notes: list[str] = []
    names, pairs, y = encode(model_a, model_b, winner, on_invalid, notes)
    m = len(names)
    if method == "mle":
        rate = lambda p, o: to_elo(fit_bt(p, o, m), names, anchor)  # noqa: E731
    elif method == "online":
        rate = lambda p, o: to_elo((online_elo(p, o, m, k) - 1000) / 400, names, anchor)  # noqa: E731
    else:
        raise MetricError(f"elo_bt: method must be mle or online, got '{method}'")
    point = rate(pairs, y)
    rng = np.random.default_rng(seed)
    samples = np.array(
        [rate(pairs[idx], y[idx]) for idx in (rng.integers(0, len(y), len(y)) for _ in range(rounds))]
    )
    estimates: dict[str, Estimate] = {}
    ratings: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        games = int(np.sum(pairs == j))
        est = Estimate(
            float(point[j]), float(samples[:, j].std(ddof=1)), percentile_ci(samples[:, j]), n=games
        )
        estimates[f"rating/{name}"] = est
        ratings[name] = est.to_dict()
        wins = y[pairs[:, 0] == j].sum() + (1 - y[pairs[:, 1] == j]).sum()
        if wins in (0, games):
            notes.append(
                f"{name} {'lost' if wins == 0 else 'won'} all {games} of its battles: its MLE rating is unbounded"
            )
    comparisons = []
    order = np.argsort(-point)
    for i_pos, i in enumerate(order):
        for j in order[i_pos + 1 :]:
            diff = samples[:, i] - samples[:, j]
            lo, hi = percentile_ci(diff)
            comparisons.append(
                {
                    "higher": names[i],
                    "lower": names[j],
                    "difference": float(point[i] - point[j]),
                    "ci95": [lo, hi],
                    "different": bool(lo > 0 or hi < 0),
                }
            )
    return MetricResult(
        "elo_bt",
        estimates,
        {"ratings": ratings, "comparisons": comparisons, "method": method, "battles": int(len(y))},
        notes,
    )
