"""GOT-D (Kang et al. 2024, "Get More for Less: Principled Data Selection for Warming Up Fine-Tuning in
LLMs", ICLR 2024): choose the candidates whose extra weight moves the candidate distribution fastest
towards the target distribution in optimal-transport distance.

Entropic OT between the candidates (uniform weights a) and the target examples (uniform b) in embedding
space, cost C_ij = 1 − cos(e_i, t_j), solved by log-domain Sinkhorn with regularisation ε; the gradient
of the OT distance with respect to candidate i's mass is its dual potential f_i, calibrated as in LAVA
(Just et al. 2023), ∂OT/∂a_i = f_i − Σ_{j≠i} f_j / (N − 1) (the weights must stay a distribution). The
most negative gradients are selected. Checked: METHODS.md `got_d_selection` block and the paper's method
section as recalled (the official code was not found with the search tool); the test plants candidates
identical to the target and checks they rank first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from alignlab.data.records import Record
from alignlab.data.select.base import Selection, check_budget, normalise, select_indices
from alignlab.data.tools import register_tool


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def sinkhorn_potentials(
    cost: np.ndarray, epsilon: float = 0.05, iterations: int = 500, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """Dual potentials (f, g) of entropic OT between uniform marginals for ``cost`` [N, M] (log domain)."""
    n, m = cost.shape
    log_a, log_b = np.full(n, -np.log(n)), np.full(m, -np.log(m))
    f, g = np.zeros(n), np.zeros(m)
    for _ in range(iterations):
        f_new = -epsilon * _logsumexp((g[None, :] - cost) / epsilon + log_b[None, :], axis=1)
        g = -epsilon * _logsumexp((f_new[:, None] - cost) / epsilon + log_a[:, None], axis=0)
        if np.max(np.abs(f_new - f)) < tol:
            f = f_new
            break
        f = f_new
    return f, g


def calibrated_gradient(f: np.ndarray) -> np.ndarray:
    """∂OT/∂a_i under Σ a = 1: f_i − mean of the other potentials."""
    n = len(f)
    return f - (f.sum() - f) / max(n - 1, 1)


@register_tool(
    "got_d_selection",
    kind="select",
    paper="Kang et al. 2024 'Get More for Less: Principled Data Selection for Warming Up Fine-Tuning in LLMs' (GOT-D, ICLR 2024)",
    test="tests/data/test_select.py::test_got_d_*: identical candidates rank highest; the in-domain half chosen",
    checked="METHODS.md got_d_selection block; LAVA calibrated OT gradient (paper recall, code not found)",
)
def got_d_selection(
    records: Sequence[Record],
    budget: int | float,
    embeddings: np.ndarray,
    target_embeddings: np.ndarray,
    epsilon: float = 0.05,
    iterations: int = 500,
) -> Selection:
    """Keep the ``budget`` records with the most negative calibrated OT gradient towards the target.
    Scores of the selection = −gradient (higher = pulls harder towards the target)."""
    m = check_budget(budget, len(records))
    if len(embeddings) != len(records):
        raise ValueError("got_d_selection: one embedding per record")
    cost = 1.0 - normalise(embeddings) @ normalise(target_embeddings).T
    f, _ = sinkhorn_potentials(cost, epsilon, iterations)
    gradient = calibrated_gradient(f)
    order = np.argsort(gradient, kind="stable")
    dropped = Counter({"OT gradient above the budget's last": len(records) - m} if len(records) > m else {})
    return select_indices(records, order[:m].tolist(), (-gradient).tolist(), "got_d_selection", dropped)
