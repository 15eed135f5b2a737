"""HyPER's performance prediction model (Miranda et al. 2024, "Hybrid Preferences: Learning to Route
Instances for Human vs. AI Feedback", arXiv 2410.19133): which instances should people label?

As the paper's code does it (github.com/allenai/hybrid-preferences, read 2026-12-05):

1. **Instance features** φ(i) ∈ {0, 1}^F (``src/feature_extractor.py`` ``get_all_features(n_bins=3)``):
   lexical features binned into thirds — the lengths ``prompt_len``, ``len_shorter``, ``len_longer``,
   ``token_len_diff`` by percentile rank (pandas ``rank(pct=True)``), similarities of the two responses
   (``rouge``, BERTScore, cosine, entity overlap) by value — and metadata tags an LM analyzer assigned
   (``analyzer_closed_set``: subject of expertise, domain, …), one feature per tag value.
   Here: the four lengths in whitespace words and the Rouge-L F of the two responses, model-free, and one
   feature per value of any ``meta`` key the user names (their own tags). The thirds are disjoint
   [0, 1/3], (1/3, 2/3], (2/3, 1]; the paper's code tests ``min ≤ v ≤ max`` with edges rounded to 0.33
   and 0.67 when counting (``get_instances``) and ``min < v < max`` when scoring (``convert_to_binary``).
2. **Training routings** (``scripts/get_count_feats.py`` ``generate_instances`` / ``run_knapsack``): for
   random budgets b ~ U{1..N}, shuffle the features, and within each its instances, and take instances
   until b are routed to people. Each routing S is described by the counts c_f(S) = Σ_{i∈S} φ_f(i).
3. **The regression** (``scripts/train_regressor.py``): y = performance of the reward model trained on
   the hybrid labels of S (RewardBench "Overall" there), fitted by ordinary least squares with an
   intercept, y ≈ w₀ + Σ_f w_f c_f(S) (sklearn ``LinearRegression``).
4. **Routing under a budget** (``scripts/sample_best_subset.py`` ``topk_sampling``,
   ``compute_gain_linear``): gain(i) = Σ_f w_f φ_f(i); the top-``budget`` instances by gain go to people.
   Since the prediction is w₀ + Σ_{i∈S} gain(i), the top-k set maximises it exactly over |S| = budget.
   (The paper's alternative ``simulated_sampling`` scores 50 random knapsack routings per budget and
   keeps the best predicted; :func:`best_of_sampled` does that.)

What is measured in step 3 (training a reward model per routing) is the expensive part and is the
caller's: ``fit_performance_model`` takes the routings and their measured performances.
Tests: tests/data/test_hyper.py (a simulated case whose best routing is known; OLS against sklearn).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignlab.data.label.route import Routing, route
from alignlab.data.records import Record
from alignlab.data.synth import rouge_l

LENGTHS = ("prompt_len", "len_shorter", "len_longer", "token_len_diff")


@dataclass
class InstanceFeatures:
    """Binary features of each instance: ``matrix`` [N, F] of 0/1, columns named by ``names``."""

    names: list[str]
    matrix: np.ndarray

    def members(self) -> list[list[int]]:
        """For each feature, the instances that have it."""
        return [np.flatnonzero(self.matrix[:, f]).tolist() for f in range(len(self.names))]


def percentile_rank(values: Sequence[float]) -> np.ndarray:
    """pandas ``Series.rank(pct=True)``: the average 1-based rank of each value (ties share it) / N."""
    x = np.asarray(values, np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # ties: the mean of their ranks
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks / max(len(x), 1)


def _third(values: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum(np.ceil(values * n_bins).astype(int) - 1, n_bins - 1).clip(0)


def instance_features(
    records: Sequence[Record], meta_keys: Sequence[str] = (), n_bins: int = 3
) -> InstanceFeatures:
    """HyPER's features of K = 2 records (see the module docstring): lengths in words by percentile
    third, Rouge-L F of the two responses by value third, and one feature per value of each ``meta_keys``
    tag (a list value sets one feature per element)."""
    for i, r in enumerate(records):
        if r.k != 2:
            raise ValueError(f"record {i}: HyPER features need K = 2 completions, this one has K = {r.k}")

    def words(text: str) -> int:
        return len(text.split())

    a = np.array([words(r.completions[0]) for r in records], np.float64)
    b = np.array([words(r.completions[1]) for r in records], np.float64)
    raw = {
        "prompt_len": np.array([words(r.prompt_text()) for r in records], np.float64),
        "len_shorter": np.minimum(a, b),
        "len_longer": np.maximum(a, b),
        "token_len_diff": np.abs(a - b),
    }
    binned = {key: _third(percentile_rank(v), n_bins) for key, v in raw.items()}
    binned["rouge"] = _third(np.array([rouge_l(r.completions[0], r.completions[1]) for r in records]), n_bins)
    names, columns = [], []
    for key, bins in binned.items():
        for b_ in range(n_bins):
            names.append(f"{key}::bin={b_ + 1}/{n_bins}")
            columns.append((bins == b_).astype(np.float64))
    for key in meta_keys:
        values = [r.meta.get(key) for r in records]
        tags = sorted({str(t) for v in values for t in (v if isinstance(v, list) else [v]) if t is not None})
        for tag in tags:
            names.append(f"{key}={tag}")
            columns.append(
                np.array(
                    [float(tag in {str(t) for t in (v if isinstance(v, list) else [v])}) for v in values]
                )
            )
    matrix = np.stack(columns, axis=1) if columns else np.zeros((len(records), 0))
    return InstanceFeatures(names, matrix)


def routing_counts(features: InstanceFeatures, human: Sequence[int]) -> np.ndarray:
    """c_f(S) = Σ_{i∈S} φ_f(i): how many routed instances have each feature."""
    return features.matrix[list(human)].sum(axis=0) if len(human) else np.zeros(len(features.names))


def knapsack_routing(features: InstanceFeatures, capacity: int, rng: random.Random) -> list[int]:
    """The paper's ``run_knapsack``: features in random order, each one's instances in random order,
    taken (once each) until ``capacity`` are routed (fewer only if the features cover fewer instances)."""
    members = features.members()
    keys = list(range(len(members)))
    rng.shuffle(keys)
    chosen: list[int] = []
    seen: set[int] = set()
    for key in keys:
        items = list(members[key])
        rng.shuffle(items)
        for item in items:
            if len(chosen) >= capacity:
                return chosen
            if item not in seen:
                seen.add(item)
                chosen.append(item)
    return chosen


def sample_routings(features: InstanceFeatures, n: int, seed: int = 0) -> list[list[int]]:
    """``n`` training routings with budgets drawn without replacement from 1..N (as the paper's
    ``random.sample(range(1, len(df) + 1), n_train_instances)``; with replacement when n > N)."""
    rng = random.Random(seed)
    size = len(features.matrix)
    budgets = rng.sample(range(1, size + 1), n) if n <= size else [rng.randint(1, size) for _ in range(n)]
    return [knapsack_routing(features, b, rng) for b in budgets]


@dataclass
class PerformanceModel:
    """y ≈ intercept + Σ_f coef_f · c_f(S), fitted on routings with measured performance."""

    names: list[str]
    coef: np.ndarray
    intercept: float

    def predict(self, counts: np.ndarray) -> np.ndarray:
        return np.asarray(counts, np.float64) @ self.coef + self.intercept

    def gain(self, features: InstanceFeatures) -> np.ndarray:
        """gain(i) = Σ_f coef_f φ_f(i), on features with the same names (in any order)."""
        index = {name: j for j, name in enumerate(features.names)}
        missing = [n for n in self.names if n not in index]
        if missing:
            raise ValueError(
                f"the performance model uses features these records lack: {missing[:5]}"
                " (extract them with the same meta keys and bins as when it was fitted)"
            )
        return features.matrix[:, [index[n] for n in self.names]] @ self.coef

    def save(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(
                {"names": self.names, "coef": self.coef.tolist(), "intercept": self.intercept}, indent=1
            )
        )

    @classmethod
    def load(cls, path: str | Path) -> PerformanceModel:
        try:
            data = json.loads(Path(path).read_text())
            return cls(list(data["names"]), np.asarray(data["coef"], np.float64), float(data["intercept"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"{path}: not a performance model ({err}); write one with PerformanceModel.save"
            ) from None


def fit_performance_model(
    features: InstanceFeatures, routings: Sequence[Sequence[int]], performance: Sequence[float]
) -> PerformanceModel:
    """Ordinary least squares with an intercept of the performances on the routings' feature counts
    (the minimum-norm solution when the counts are collinear, e.g. three bins that always sum to |S|)."""
    if len(routings) != len(performance) or len(routings) < 2:
        raise ValueError("fit_performance_model needs one performance per routing, at least 2")
    counts = np.stack([routing_counts(features, r) for r in routings])
    design = np.hstack([np.ones((len(counts), 1)), counts])
    solution, *_ = np.linalg.lstsq(design, np.asarray(performance, np.float64), rcond=None)
    return PerformanceModel(list(features.names), solution[1:], float(solution[0]))


def best_routing(model: PerformanceModel, features: InstanceFeatures, budget: int) -> Routing:
    """The paper's top-k: the ``budget`` instances of highest predicted gain to people."""
    return route(model.gain(features).tolist(), budget)


def best_of_sampled(
    model: PerformanceModel, features: InstanceFeatures, budget: int, n: int = 50, seed: int = 0
) -> list[int]:
    """The paper's ``simulated_sampling``: ``n`` knapsack routings of size ``budget``; the best predicted."""
    rng = random.Random(seed)
    candidates = [knapsack_routing(features, budget, rng) for _ in range(n)]
    scores = [float(model.predict(routing_counts(features, c))) for c in candidates]
    return candidates[int(np.argmax(scores))]


def measure_routings(
    routings: Sequence[Sequence[int]], evaluate: Callable[[list[int]], float]
) -> list[float]:
    """Performance of each routing by ``evaluate(human_indices)`` (train and score a reward model)."""
    return [float(evaluate(list(r))) for r in routings]
