"""Length-controlled win rate as AlpacaEval 2 fits it (Dubois et al. 2024, arXiv 2404.04475).

Per instruction i with judge verdict p_i = P(model ≻ baseline) ∈ [0, 1] (AlpacaEval: preference − 1, tie 0 →
1.5 first):

1. std_delta_len_i = (len(baseline_i) − len(model_i)) / std(len(baseline) − len(model)) (characters; pandas'
   std, ddof = 1, over this model's rows).
2. GLM without intercept, formula ``np.tanh(std_delta_len) + instruction_difficulty +
   not_gamed_baseline.astype(float) - 1``: logit q_i = θ·1 + φ·tanh(std_delta_len_i) + ψ·difficulty_i,
   fitted on the soft targets p_i with an L1 penalty and 5-fold grouped CV over C (:mod:`alignlab.eval.glm`).
   With ``gamed`` annotations (the baseline made verbose/concise and judged against itself, not_gamed = 0),
   those rows join the fit with weight λ/k each (λ = ``regularize_to_baseline_lambda`` = 0.2, k gamed sets;
   AlpacaEval has k = 2 and weights λ/2), pulling θ and ψ towards the baseline's.
3. LC = 100·mean_i σ(θ + ψ·difficulty_i): the prediction at std_delta_len = 0 (equal lengths).

``difficulty`` is AlpacaEval's precomputed per-instruction ``instruction_difficulty``; without it the term is
left out (a model with θ and φ only). Neither the difficulties nor the gamed annotations of AlpacaEval's own
805 instructions are bundled (they are downloaded from the Hub by alpaca_eval); pass them when you have them.
Uncertainty: a bootstrap over instructions (the GLM refitted on each resample with the C chosen on all rows;
AlpacaEval reports no interval for LC).

checked: tatsu-lab/alpaca_eval src/alpaca_eval/metrics/glm_winrate.py (GLM_INFO "length_controlled_v1",
get_length_controlled_winrate, _get_featurized_data, fit_LogisticRegressionCV: penalty l1, liblinear,
fit_intercept False, GroupKFold(5), logloss_continuous, duplication of rows for soft targets), read with the
search tool. The GLM is checked against sklearn's liblinear in tests/eval/test_lc_winrate.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.eval.glm import fit_l1_logistic, fit_l1_logistic_cv, sigmoid
from alignlab.eval.inputs import check_range, check_texts
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import Estimate, MetricResult, against, bootstrap, mean_estimate, percentile_ci


def length_features(model_outputs: Sequence[str], baseline_outputs: Sequence[str]) -> np.ndarray:
    """std_delta_len = (len(baseline) − len(model)) / std (ddof 1); all zeros when the differences are constant."""
    delta = np.array([len(b) - len(m) for m, b in zip(model_outputs, baseline_outputs)], dtype=float)
    std = delta.std(ddof=1) if delta.size > 1 else 0.0
    return delta / std if std > 0 else np.zeros_like(delta)


def design(std_delta_len: np.ndarray, difficulty: np.ndarray | None, not_gamed: np.ndarray) -> np.ndarray:
    """Columns [not_gamed_baseline, tanh(std_delta_len), (instruction_difficulty)]."""
    columns = [not_gamed, np.tanh(std_delta_len)]
    if difficulty is not None:
        columns.append(difficulty)
    return np.stack(columns, axis=1)


def length_curve(delta: np.ndarray, p: np.ndarray, lc_p: np.ndarray, bins: int = 6) -> dict[str, list[float]]:
    """Raw win rate (± sem) and GLM-at-equal-length win rate per quantile bin of len(model) − len(baseline)."""
    edges = np.unique(np.quantile(delta, np.linspace(0, 1, bins + 1)))
    out: dict[str, list[float]] = {
        "length_difference": [],
        "win_rate": [],
        "se": [],
        "lc_win_rate": [],
        "n": [],
    }
    if len(edges) < 2:
        edges = np.array([delta.min(), delta.max() + 1])
    index = np.clip(np.searchsorted(edges[1:-1], delta, side="right"), 0, len(edges) - 2)
    for b in range(len(edges) - 1):
        sel = index == b
        if not sel.any():
            continue
        est = mean_estimate(p[sel], 100.0)
        out["length_difference"].append(float(delta[sel].mean()))
        out["win_rate"].append(est.value)
        out["se"].append(0.0 if not np.isfinite(est.se) else est.se)
        out["lc_win_rate"].append(float(100 * lc_p[sel].mean()))
        out["n"].append(int(sel.sum()))
    return out


@register_metric(
    "lc_winrate",
    paper="Dubois et al. 2024, Length-Controlled AlpacaEval (arXiv 2404.04475)",
    inputs="judgements",
    checked="tatsu-lab/alpaca_eval metrics/glm_winrate.py (length_controlled_v1); GLM vs sklearn liblinear in tests",
)
def lc_winrate(
    *,
    verdicts: Sequence[Any],
    model_outputs: Sequence[str],
    baseline_outputs: Sequence[str],
    difficulty: Sequence[float] | None = None,
    gamed: Sequence[dict[str, Sequence[Any]]] | None = None,
    regularize_to_baseline_lambda: float = 0.2,
    encoding: str = "probability",
    rounds: int = 200,
    seed: int = 0,
    on_invalid: str = "raise",
) -> MetricResult:
    """Length-controlled win rate: AlpacaEval 2's GLM predicted at equal length, with a bootstrap interval."""
    n = len(verdicts)
    if not (len(model_outputs) == len(baseline_outputs) == n):
        raise MetricError(
            f"lc_winrate: {n} verdicts, {len(model_outputs)} model outputs and {len(baseline_outputs)} baseline "
            "outputs; give one of each per instruction"
        )
    notes: list[str] = []
    low, high = (0.0, 2.0) if encoding == "alpaca_eval" else (0.0, 1.0)
    p_all, kept = check_range(list(verdicts), "verdicts", low, high, on_invalid, notes)
    empty = check_texts([model_outputs[i] for i in kept], "model outputs", on_invalid, notes)
    empty |= check_texts([baseline_outputs[i] for i in kept], "baseline outputs", on_invalid, notes)
    keep_local = np.array([j for j in range(len(kept)) if j not in empty], dtype=int)
    p, kept = p_all[keep_local], kept[keep_local]
    if encoding == "alpaca_eval":
        p = np.where(p == 0, 1.5, p) - 1.0
    if len(p) < 10:
        raise MetricError(f"lc_winrate needs at least 10 judged instructions to fit its GLM, got {len(p)}")
    model = [model_outputs[i] for i in kept]
    base = [baseline_outputs[i] for i in kept]
    if model == base:  # the baseline against itself: 50 by construction (AlpacaEval does the same)
        half = Estimate(50.0, 0.0, (50.0, 50.0), n=len(p))
        return MetricResult(
            "lc_winrate",
            {"lc_win_rate": half, "win_rate": mean_estimate(p, 100.0, (0.0, 100.0))},
            {"verdict": "not distinguishable", "length_curve": None},
            notes + ["the model's outputs are the baseline's: LC = 50 by construction"],
        )
    sdl = length_features(model, base)
    diff = None if difficulty is None else np.asarray(difficulty, dtype=float)[kept]
    x = design(sdl, diff, np.ones(len(p)))
    w = np.ones(len(p))
    if gamed:
        lam = float(regularize_to_baseline_lambda)
        xs, ps, ws = [x], [p], [w]
        for g in gamed:
            gp = np.asarray(g["verdicts"], dtype=float)
            if encoding == "alpaca_eval":
                gp = np.where(gp == 0, 1.5, gp) - 1.0
            gd = None if diff is None else np.asarray(g["difficulty"], dtype=float)
            xs.append(
                design(length_features(g["model_outputs"], g["baseline_outputs"]), gd, np.zeros(len(gp)))
            )
            ps.append(gp)
            ws.append(np.full(len(gp), lam / len(gamed)))
        x, p, w = np.vstack(xs), np.concatenate(ps), np.concatenate(ws)
    n_model = len(kept)
    beta, c, losses = fit_l1_logistic_cv(x, p, w)
    test = design(np.zeros(n_model), diff, np.ones(n_model))
    lc_p = sigmoid(test @ beta)
    raw = p[:n_model]

    def replicate(idx: np.ndarray) -> float:
        rows = np.concatenate([idx, np.arange(n_model, len(p))])
        b = fit_l1_logistic(x[rows], p[rows], w[rows], c, tol=1e-8)
        return float(100 * sigmoid(test[idx] @ b).mean())

    samples = bootstrap(replicate, n_model, rounds, seed)
    lc = Estimate(float(100 * lc_p.mean()), float(np.std(samples, ddof=1)), percentile_ci(samples), n=n_model)
    names = ["not_gamed_baseline", "tanh(std_delta_len)"] + (
        ["instruction_difficulty"] if diff is not None else []
    )
    delta = np.array([len(m) - len(b) for m, b in zip(model, base)], dtype=float)
    return MetricResult(
        "lc_winrate",
        {"lc_win_rate": lc, "win_rate": mean_estimate(raw, 100.0, (0.0, 100.0))},
        {
            "weights": dict(zip(names, beta.tolist())),
            "C": c,
            "cv_loss": losses.tolist(),
            "glm_preferences": lc_p.tolist(),
            "length_curve": length_curve(delta, raw, lc_p),
            "gamed_sets": len(gamed or []),
            "verdict": against(lc, 50.0, "model better than baseline", "baseline better than model"),
        },
        notes,
    )
