"""L1-penalised logistic regression on soft targets, without intercept, with grouped K-fold choice of C — the GLM
AlpacaEval 2 fits for its length-controlled win rate (``fit_LogisticRegressionCV``), written in numpy.

Objective (liblinear's primal with per-row weights, as sklearn minimises it):

    min_β ‖β‖₁ + C · Σ_i w_i · [p_i · softplus(−x_i·β) + (1 − p_i) · softplus(x_i·β)]

AlpacaEval gets soft targets into sklearn by duplicating every row (label 1 with weight p·w, label 0 with
weight (1 − p)·w); the objective above is that sum. Solved by cyclic coordinate descent with a Newton step per
coordinate and soft-thresholding (Friedman, Hastie & Tibshirani 2010, §3), with a backtracking line search
on the objective, to a change below ``tol``.

C is chosen on the grid C ∈ logspace(−4, 4, 10) (sklearn's ``Cs=10``) by K-fold cross-validation over groups
(one group per original row, K = 5), scoring the weighted soft log loss mean_i w_i·CE(p_i, q_i) on the held-out
fold (AlpacaEval's ``logloss_continuous``, predictions clipped to [1e-15, 1 − 1e-15]); the best mean score wins
(the first on ties), then β is refitted on all rows with that C. Fold f holds the rows i with (n − 1 − i) mod K = f,
the folds sklearn's GroupKFold makes of n equal-size groups (checked in the tests against sklearn's
LogisticRegressionCV called exactly as AlpacaEval calls it).
"""

from __future__ import annotations

import numpy as np

C_GRID = np.logspace(-4, 4, 10)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def objective(beta: np.ndarray, x: np.ndarray, p: np.ndarray, w: np.ndarray, c: float) -> float:
    z = x @ beta
    return float(np.abs(beta).sum() + c * np.sum(w * (p * _softplus(-z) + (1 - p) * _softplus(z))))


def fit_l1_logistic(
    x: np.ndarray, p: np.ndarray, w: np.ndarray, c: float, tol: float = 1e-10, max_sweeps: int = 10_000
) -> np.ndarray:
    """β minimising the objective of the module docstring (no intercept)."""
    x, p, w = np.asarray(x, float), np.asarray(p, float), np.asarray(w, float)
    beta = np.zeros(x.shape[1])
    current = objective(beta, x, p, w, c)
    for _ in range(max_sweeps):
        largest = 0.0
        for j in range(x.shape[1]):
            q = sigmoid(x @ beta)
            grad = c * np.sum(w * (q - p) * x[:, j])
            hess = c * np.sum(w * q * (1 - q) * x[:, j] ** 2) + 1e-12
            target = beta[j] - grad / hess
            new = np.sign(target) * max(abs(target) - 1.0 / hess, 0.0)
            step = new - beta[j]
            if step == 0.0:
                continue
            t = 1.0
            while True:  # backtrack until the objective does not increase
                trial = beta.copy()
                trial[j] = beta[j] + t * step
                value = objective(trial, x, p, w, c)
                if value <= current + 1e-15 or t < 1e-8:
                    break
                t *= 0.5
            largest = max(largest, abs(trial[j] - beta[j]))
            beta, current = trial, value
        if largest < tol:
            break
    return beta


def soft_log_loss(q: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    q = np.clip(q, 1e-15, 1 - 1e-15)
    return float(-np.mean(w * (p * np.log(q) + (1 - p) * np.log(1 - q))))


def fit_l1_logistic_cv(
    x: np.ndarray, p: np.ndarray, w: np.ndarray, n_splits: int = 5, grid: np.ndarray = C_GRID
) -> tuple[np.ndarray, float, np.ndarray]:
    """(β refitted with the best C, that C, mean held-out loss per C) by grouped K-fold CV."""
    x, p, w = np.asarray(x, float), np.asarray(p, float), np.asarray(w, float)
    # sklearn's GroupKFold on equal-size groups (sorted by size, reversed, each to the lightest fold) puts row
    # i in fold (n − 1 − i) mod K; the same folds, so C is chosen on the same splits as AlpacaEval's.
    fold = (len(p) - 1 - np.arange(len(p))) % n_splits
    losses = np.zeros(len(grid))
    for k, c in enumerate(grid):
        scores = []
        for f in range(n_splits):
            train, test = fold != f, fold == f
            beta = fit_l1_logistic(x[train], p[train], w[train], c)
            scores.append(soft_log_loss(sigmoid(x[test] @ beta), p[test], w[test]))
        losses[k] = np.mean(scores)
    best = float(grid[int(np.argmin(losses))])
    return fit_l1_logistic(x, p, w, best), best, losses
