"""Hybrid human/AI preference routing (Miranda et al. 2024, "Hybrid Preferences: Learning to Route
Instances for Human vs. AI Feedback", arXiv 2410.19133).

The paper fits a performance-prediction model (PPM): a regression from features of the set of instances
routed to humans to the reward model's performance, then routes the instances whose human label is
predicted to help most; :mod:`alignlab.data.label.hyper` builds it as the paper's code does (features,
knapsack training routings, least squares, top-k by gain). This module is the routing step with the gain
per instance given: the PPM's, or one that needs no trained PPM: ``uncertainty`` = 1 − |2p − 1| from an
AI judge's symmetric preference p (humans label what the AI is least sure of). The top-``budget``
instances by gain go to people, the rest to the AI judge: exactly ``budget`` (or all, when fewer) human
labels are spent. Checked: allenai/hybrid-preferences ``scripts/sample_best_subset.py`` (topk_sampling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alignlab.data.tools import register_tool


@dataclass
class Routing:
    human: list[int]  # indices of the instances sent to people, by gain descending
    ai: list[int]  # the rest, in input order
    gain: list[float]


def uncertainty_gain(p: Sequence[float]) -> np.ndarray:
    return 1.0 - np.abs(2.0 * np.asarray(p, np.float64) - 1.0)


@register_tool(
    "hybrid_preference_routing",
    kind="route",
    paper="Miranda et al. 2024 'Hybrid Preferences: Learning to Route Instances for Human vs. AI Feedback' (arXiv 2410.19133)",
    test="tests/data/test_label.py::test_route_*: budget 0 -> all AI, budget n -> all human, exactly the budget;"
    " tests/data/test_hyper.py: the fitted PPM routes the known best subset of a simulated case",
    checked="allenai/hybrid-preferences scripts/{get_count_feats,train_regressor,sample_best_subset}.py "
    "(knapsack routings, count features, OLS, top-k by gain); gain given, PPM or AI uncertainty",
)
def route(gain: Sequence[float], budget: int) -> Routing:
    """The ``budget`` instances of highest ``gain`` to people (ties: input order), the rest to the AI."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"the human budget must be a whole number >= 0, got {budget!r}")
    values = np.asarray(gain, np.float64)
    order = np.argsort(-values, kind="stable").tolist()
    human = order[: min(budget, len(order))]
    chosen = set(human)
    return Routing(human, [i for i in range(len(values)) if i not in chosen], values.tolist())


def linear_gain(features: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """A linear PPM's predicted gain per instance, ``features @ weights``."""
    return np.asarray(features, np.float64) @ np.asarray(weights, np.float64)
