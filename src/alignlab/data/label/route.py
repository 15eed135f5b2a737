"""Hybrid human/AI preference routing (Miranda et al. 2024, "Hybrid Preferences: Learning to Route
Instances for Human vs. AI Feedback", arXiv 2410.19133).

The paper fits a performance-prediction model (PPM): a regression from features of the set of instances
routed to humans to the reward model's performance, then routes the instances whose human label is
predicted to help most. alignlab ships the routing step with the gain per instance given, and two
gains that need no trained PPM: ``uncertainty`` = 1 − |2p − 1| from an AI judge's symmetric preference p
(humans label what the AI is least sure of) and ``disagreement`` among several AI judges (1 − majority
share); or a linear PPM ``gain = w · features`` with weights the user fits on their own MultiPref-style
data. The top-``budget`` instances by gain go to people, the rest to the AI judge: exactly ``budget``
(or all, when fewer) human labels are spent. Checked: METHODS.md `hybrid_preference_routing` block
(abstract); the PPM itself is not reproduced.
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
    test="tests/data/test_label.py::test_route_*: budget 0 -> all AI, budget n -> all human, exactly the budget",
    checked="METHODS.md hybrid_preference_routing block (abstract); gain given or uncertainty/disagreement",
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
