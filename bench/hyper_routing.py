"""HyPER end to end on a simulated preference set: fit the performance prediction model on routings whose
reward model is actually trained and measured, then compare its routing with random routing at the same
human budget (and with all-AI / all-human labels).

    python bench/hyper_routing.py --seeds 0,1,2,3,4 [--pool 800] [--train-routings 120]

The world (one per seed): every response has features x ∈ R^8 and a length in words; the gold utility is
θ·x (length plays no part). Each pair carries a ``domain`` tag. People label by Bradley–Terry on the
utility gap (P(a ≻ b) = σ(3 (u_a − u_b))); the AI judge does too on ``chat`` and ``safety`` pairs, but on
``code`` and ``math`` pairs it prefers the longer response 90% of the time (a length bias that carries no
information about θ). The "reward model" is a linear Bradley–Terry model r(y) = β·x fitted by L2-regularised
logistic regression on the hybrid labels; its performance is its accuracy on 2,000 held-out pairs against
the gold utility. The performance prediction model is :mod:`alignlab.data.label.hyper`'s (features:
length thirds, Rouge-L thirds, ``domain`` tags; knapsack routings; least squares; top-k by gain).
Measured figures and the commands are in docs/data.md (Routing).
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

from alignlab.data.label.hyper import (
    best_routing,
    fit_performance_model,
    instance_features,
    sample_routings,
)
from alignlab.data.records import pair
from alignlab.eval.paired import paired_test

DOMAINS = ("chat", "safety", "code", "math")
BIASED = {"code", "math"}
DIM = 8


def make_world(seed: int, pool: int, test: int) -> dict:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=DIM)
    x = rng.normal(size=(pool, 2, DIM))
    length = rng.integers(3, 60, size=(pool, 2))
    domain = [DOMAINS[i % len(DOMAINS)] for i in range(pool)]
    utility = x @ theta
    p_gold = 1 / (1 + np.exp(-3 * (utility[:, 0] - utility[:, 1])))
    human = rng.random(pool) < p_gold  # True: a ≻ b
    longer_a = length[:, 0] > length[:, 1]
    ai = np.where(
        [d in BIASED for d in domain],
        np.where(rng.random(pool) < 0.9, longer_a, ~longer_a),
        rng.random(pool) < p_gold,
    )
    x_test = rng.normal(size=(test, 2, DIM))
    gold_test = (x_test @ theta)[:, 0] > (x_test @ theta)[:, 1]
    records = [
        pair(
            f"q{i}",
            " ".join(["a"] * length[i, 0]),
            " ".join(["b"] * length[i, 1]),
            meta={"domain": domain[i]},
        )
        for i in range(pool)
    ]
    return {"x": x, "human": human, "ai": ai, "x_test": x_test, "gold_test": gold_test, "records": records}


def rm_accuracy(world: dict, routed: list[int], l2: float = 1e-2, steps: int = 25) -> float:
    """Fit r(y) = β·x by Newton's method on the hybrid labels; accuracy on the held-out gold pairs."""
    labels = world["ai"].copy()
    labels[list(routed)] = world["human"][list(routed)]
    diff = world["x"][:, 0] - world["x"][:, 1]
    y = labels.astype(np.float64)
    beta = np.zeros(DIM)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(diff @ beta)))
        grad = diff.T @ (p - y) / len(y) + l2 * beta
        hess = (diff * (p * (1 - p))[:, None]).T @ diff / len(y) + l2 * np.eye(DIM)
        beta -= np.linalg.solve(hess, grad)
    test = world["x_test"]
    predicted = (test[:, 0] - test[:, 1]) @ beta > 0
    return float((predicted == world["gold_test"]).mean())


def run_seed(seed: int, pool: int, n_routings: int, budgets: list[float], n_random: int) -> dict:
    world = make_world(seed, pool, 2000)
    features = instance_features(world["records"], meta_keys=["domain"])
    routings = sample_routings(features, n_routings, seed=seed)
    performance = [rm_accuracy(world, r) for r in routings]
    model = fit_performance_model(features, routings, performance)
    rng = random.Random(seed)
    out = {
        "seed": seed,
        "all_ai": rm_accuracy(world, []),
        "all_human": rm_accuracy(world, list(range(pool))),
        "budgets": {},
    }
    for fraction in budgets:
        k = int(round(fraction * pool))
        chosen = best_routing(model, features, k).human
        random_scores = [rm_accuracy(world, rng.sample(range(pool), k)) for _ in range(n_random)]
        # the routing the world's construction says is best: the biased domains' pairs first
        biased = [i for i in range(pool) if world["records"][i].meta["domain"] in BIASED]
        rest = [i for i in range(pool) if i not in set(biased)]
        rng.shuffle(biased), rng.shuffle(rest)
        out["budgets"][str(fraction)] = {
            "hyper": rm_accuracy(world, chosen),
            "biased_first": rm_accuracy(world, (biased + rest)[:k]),
            "random": float(np.mean(random_scores)),
            "share_biased_domains_routed": float(
                np.mean([world["records"][i].meta["domain"] in BIASED for i in chosen]) if chosen else 0.0
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--pool", type=int, default=800)
    parser.add_argument("--train-routings", type=int, default=120)
    parser.add_argument("--budgets", default="0.1,0.25,0.5")
    parser.add_argument("--random-draws", type=int, default=20)
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    start, cpu = time.perf_counter(), time.process_time()
    runs = [
        run_seed(int(s), args.pool, args.train_routings, budgets, args.random_draws)
        for s in args.seeds.split(",")
    ]
    summary = {}
    for b in budgets:
        hyper = [r["budgets"][str(b)]["hyper"] for r in runs]
        rand = [r["budgets"][str(b)]["random"] for r in runs]
        summary[str(b)] = paired_test(hyper, rand).as_dict() if len(runs) > 1 else None
    print(
        json.dumps(
            {
                "runs": runs,
                "hyper_minus_random": summary,
                "wall_s": round(time.perf_counter() - start, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
