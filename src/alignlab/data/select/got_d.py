"""GOT-D (Kang et al. 2024, "Get More for Less: Principled Data Selection for Warming Up Fine-Tuning in
LLMs", ICLR 2024): choose the candidates whose extra weight moves the candidate distribution fastest
towards the target distribution in optimal-transport distance.

Method (paper §2.3, Theorem 1 and Eq. 4/8 of Appendix B.2): with the candidate pool D_S standing in for the
pre-training data, D_U* = argmin_{D_U ⊂ D_S} D_U · ∂OT(D_S, D_R)/∂D_S, i.e. keep the candidates with the most
negative gradient of the OT distance to the target data D_R with respect to their probability mass.

How it is computed here, checked against the official code (github.com/REDSgnaoh/DV4LLM, the paper's
anonymous "DV4LLM" release: ``pre_process+OT_selection/ot-selection.ipynb`` and
``pre-process+domain_tests.ipynb``, read 2026-12-05):

- embeddings: the notebooks embed each text with the mean of a (task-fine-tuned) DistilBERT's last hidden
  states; here any encoder (``--encoder``), or hashed character 3-grams.
- cost: ``ott.geometry.pointcloud.PointCloud(target, candidates, epsilon=1e-1)``, whose default cost is the
  squared Euclidean distance ‖e_i − t_j‖² on the raw embeddings (``cost="sqeuclidean"``, the default).
  ``cost="cosine"`` uses 1 − cos(e_i, t_j) instead (on unit vectors ‖e − t‖² = 2(1 − cos), so cosine with
  ε/2 equals squared Euclidean with ε on normalised embeddings).
- entropic OT between uniform weights a (candidates) and b (targets), ε = 0.1 as in the notebook; solved
  here by log-domain Sinkhorn to a marginal error below ``tol`` (the notebook: ott-jax Sinkhorn with
  momentum 1.3, threshold 0.1, at most 2,000 iterations; its looser stop moves the potentials a little).
  Potentials: f_i = −ε log Σ_j b_j exp((g_j − C_ij)/ε), g_j = −ε log Σ_i a_i exp((f_i − C_ij)/ε), the dual
  of min_P ⟨P, C⟩ + ε KL(P ‖ a⊗b); the candidate potential is ott's ``ot_u.g`` there (candidates are y).
- gradient w.r.t. candidate i's mass, calibrated as in LAVA (Just et al. 2023, github.com/reds-lab/LAVA
  ``lava.py`` ``get_calibrated_gradients``): the masses must stay a distribution, so the derivative is
  along e_i − Σ_{k≠i} e_k/(N − 1): ∂OT/∂a_i = f_i − Σ_{k≠i} f_k/(N − 1) (LAVA writes it
  (1 + 1/(N − 1)) f_i − Σ_k f_k/(N − 1)). The GOT-D notebook writes f_i − (mean_k f_k − f_i/N), which
  divides by N instead of N − 1; both are increasing affine maps of f, so the ranking, and the selection,
  is the same.
- selection: rank ascending (``pd.Series(g).rank(ascending=True).argsort()``) and keep the first budget.

Not done here: the notebooks' preprocessing (texts cut or joined to 1,000 characters, BERT tokens padded
to 295 and averaged with the padding) and their first "domain relevance" pass (OT distance of 10–20k
samples of each source domain to the target, keeping the closest 2–4 domains as the pool).
Tests: ``tests/data/test_select.py::test_got_d_*`` (identical candidates rank highest, the in-domain half
chosen, the paper's Figure 3 case: the under-represented half of the target is what is chosen; the
calibrated gradient equals a finite difference of an independently computed entropic OT value).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignlab.data.records import Record
from alignlab.data.select.base import Selection, check_budget, normalise, select_indices
from alignlab.data.tools import register_tool

COSTS = ("sqeuclidean", "cosine")


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def ot_cost(embeddings: np.ndarray, target_embeddings: np.ndarray, cost: str = "sqeuclidean") -> np.ndarray:
    """Cost matrix [N, M]: ‖e_i − t_j‖² (ott's PointCloud default) or 1 − cos(e_i, t_j)."""
    if cost == "cosine":
        return 1.0 - normalise(embeddings) @ normalise(target_embeddings).T
    if cost != "sqeuclidean":
        raise ValueError(f"got_d_selection: unknown cost {cost!r}; choose one of {', '.join(COSTS)}")
    e = np.asarray(embeddings, dtype=np.float64)
    t = np.asarray(target_embeddings, dtype=np.float64)
    sq = (e * e).sum(1)[:, None] + (t * t).sum(1)[None, :] - 2.0 * e @ t.T
    return np.maximum(sq, 0.0)  # rounding can make a zero distance slightly negative


def sinkhorn_potentials(
    cost: np.ndarray,
    epsilon: float = 0.1,
    iterations: int = 2000,
    tol: float = 1e-9,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Dual potentials (f, g) of entropic OT for ``cost`` [N, M] between weights ``a`` and ``b`` (uniform
    when left out), by log-domain Sinkhorn, and the L1 error of the row marginal of the plan
    P_ij = a_i b_j exp((f_i + g_j − C_ij)/ε) when it stopped (the column marginal is exact after each
    g update). Stops when that error (checked every 10 iterations) is below ``tol`` or after
    ``iterations``."""
    n, m = cost.shape
    log_a = np.full(n, -np.log(n)) if a is None else np.log(np.asarray(a, dtype=np.float64))
    log_b = np.full(m, -np.log(m)) if b is None else np.log(np.asarray(b, dtype=np.float64))
    f, g = np.zeros(n), np.zeros(m)
    error = np.inf
    for step in range(1, iterations + 1):
        f = -epsilon * _logsumexp((g[None, :] - cost) / epsilon + log_b[None, :], axis=1)
        g = -epsilon * _logsumexp((f[:, None] - cost) / epsilon + log_a[:, None], axis=0)
        if step % 10 == 0 or step == iterations:  # the error costs one more pass over C
            log_row = f / epsilon + log_a + _logsumexp((g[None, :] - cost) / epsilon + log_b[None, :], axis=1)
            error = float(np.abs(np.exp(log_row) - np.exp(log_a)).sum())
            if error < tol:
                break
    return f, g, error


def calibrated_gradient(f: np.ndarray) -> np.ndarray:
    """∂OT/∂a_i under Σ a = 1 (LAVA): f_i − mean of the other potentials."""
    n = len(f)
    return f - (f.sum() - f) / max(n - 1, 1)


@register_tool(
    "got_d_selection",
    kind="select",
    paper="Kang et al. 2024 'Get More for Less: Principled Data Selection for Warming Up Fine-Tuning in LLMs' (GOT-D, ICLR 2024)",
    test="tests/data/test_select.py::test_got_d_*: identical candidates rank highest; the in-domain half "
    "chosen; the under-represented part of the target chosen (paper Fig. 3); gradient = finite difference",
    checked="paper §2.3 + App. B.2 Eq. 8; official code REDSgnaoh/DV4LLM pre_process+OT_selection/"
    "ot-selection.ipynb (ott PointCloud sq. Euclidean, eps 0.1, ascending calibrated gradient); "
    "reds-lab/LAVA lava.py get_calibrated_gradients",
)
def got_d_selection(
    records: Sequence[Record],
    budget: int | float,
    embeddings: np.ndarray,
    target_embeddings: np.ndarray,
    epsilon: float = 0.1,
    cost: str = "sqeuclidean",
    iterations: int = 2000,
    tol: float = 1e-9,
) -> Selection:
    """Keep the ``budget`` records with the most negative calibrated OT gradient towards the target.
    Scores of the selection = −gradient (higher = pulls harder towards the target). Warns when Sinkhorn
    stops above ``tol`` (raise ``iterations`` or ``epsilon``: ε is absolute, in units of the cost)."""
    m = check_budget(budget, len(records))
    if len(embeddings) != len(records):
        raise ValueError("got_d_selection: one embedding per record")
    if len(target_embeddings) == 0:
        raise ValueError("got_d_selection: no target examples")
    if not epsilon > 0:
        raise ValueError(f"got_d_selection: epsilon must be > 0, got {epsilon!r}")
    matrix = ot_cost(embeddings, target_embeddings, cost)
    f, _, error = sinkhorn_potentials(matrix, epsilon, iterations, tol)
    if not error < tol:
        warnings.warn(
            f"got_d_selection: Sinkhorn stopped after {iterations} iterations with marginal error "
            f"{error:.2e} (> {tol:g}); the ranking may be rough: raise epsilon (now {epsilon:g}, "
            f"cost scale {float(np.median(matrix)):.3g}) or the iterations",
            stacklevel=2,
        )
    gradient = calibrated_gradient(f)
    order = np.argsort(gradient, kind="stable")
    dropped = Counter({"OT gradient above the budget's last": len(records) - m} if len(records) > m else {})
    return select_indices(records, order[:m].tolist(), (-gradient).tolist(), "got_d_selection", dropped)
