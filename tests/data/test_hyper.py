"""HyPER's performance prediction model on a simulated case whose best routing is known: the measured
performance of a routing is a known sum of per-instance gains (set by the instances' features) plus noise;
the fitted model must route the set a brute-force optimum would, within the human budget."""

from __future__ import annotations

import random

import numpy as np
import pytest

from alignlab.data.label.hyper import (
    PerformanceModel,
    best_of_sampled,
    best_routing,
    fit_performance_model,
    instance_features,
    knapsack_routing,
    percentile_rank,
    routing_counts,
    sample_routings,
)
from alignlab.data.records import pair

DOMAINS = ("code", "chat", "math")
TRUE = {"domain=code": 0.004, "domain=math": 0.002, "domain=chat": -0.001, "len_longer::bin=3/3": 0.003}


def _pool(n: int = 60):
    r = random.Random(0)
    records = []
    for i in range(n):
        a = " ".join(["word"] * r.randint(2, 40))
        b = " ".join(["other"] * r.randint(2, 40))
        records.append(pair(" ".join(["ask"] * r.randint(3, 30)), a, b, meta={"domain": DOMAINS[i % 3]}))
    return records


def _true_gain(features) -> np.ndarray:
    return sum(w * features.matrix[:, features.names.index(name)] for name, w in TRUE.items())


def test_features_are_thirds_of_percentile_ranks_and_one_hot_tags():
    records = _pool(30)
    f = instance_features(records, meta_keys=["domain"])
    lengths = np.array([max(len(r.completions[0].split()), len(r.completions[1].split())) for r in records])
    ranks = percentile_rank(lengths)
    for third in (1, 2, 3):  # each third's members: rank in ((t-1)/3, t/3]
        column = f.matrix[:, f.names.index(f"len_longer::bin={third}/3")]
        expect = (ranks > (third - 1) / 3) & (ranks <= third / 3)
        assert column.tolist() == expect.astype(float).tolist()
    assert f.matrix[:, f.names.index("domain=math")].tolist() == [float(i % 3 == 2) for i in range(30)]


def test_percentile_rank_matches_pandas():
    pd = pytest.importorskip("pandas")
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    assert percentile_rank(values).tolist() == pytest.approx(pd.Series(values).rank(pct=True).tolist())


def test_knapsack_routes_exactly_the_capacity_of_distinct_instances():
    f = instance_features(_pool(), meta_keys=["domain"])
    rng = random.Random(1)
    for capacity in (0, 1, 17, 60):
        routed = knapsack_routing(f, capacity, rng)
        assert len(routed) == len(set(routed)) == capacity


def test_fit_is_ordinary_least_squares_with_an_intercept():
    sklearn = pytest.importorskip("sklearn.linear_model")
    f = instance_features(_pool(), meta_keys=["domain"])
    routings = sample_routings(f, 40, seed=2)
    y = np.random.default_rng(0).normal(size=40)
    model = fit_performance_model(f, routings, y)
    counts = np.stack([routing_counts(f, r) for r in routings])
    reference = sklearn.LinearRegression().fit(counts, y)
    assert model.predict(counts) == pytest.approx(reference.predict(counts), abs=1e-8)


def test_the_fitted_model_routes_the_known_best_subset_within_the_budget(tmp_path):
    records = _pool()
    f = instance_features(records, meta_keys=["domain"])
    gain = _true_gain(f)
    noise = np.random.default_rng(3)
    routings = sample_routings(f, 200, seed=4)
    # the "measured" performance of each routing: what training a reward model on its labels would give
    performance = [0.6 + gain[r].sum() + noise.normal(0, 5e-4) for r in routings]
    model = fit_performance_model(f, routings, performance)
    model.save(tmp_path / "ppm.json")
    model = PerformanceModel.load(tmp_path / "ppm.json")
    for budget in (0, 10, 25, 60):
        chosen = best_routing(model, f, budget).human
        assert len(chosen) == budget
        optimum = np.sort(gain)[::-1][:budget].sum()  # the best any budget-sized set can do
        assert gain[chosen].sum() == pytest.approx(optimum, abs=1e-12)
    # the paper's other search (best of 50 sampled routings) does no better than top-k
    sampled = best_of_sampled(model, f, 25, n=50, seed=5)
    assert len(sampled) == 25 and gain[sampled].sum() <= np.sort(gain)[::-1][:25].sum() + 1e-12
    # and a random routing of the same size is worse on average
    rng = random.Random(6)
    random_value = np.mean([gain[rng.sample(range(60), 25)].sum() for _ in range(200)])
    assert random_value < np.sort(gain)[::-1][:25].sum() - 0.02


def test_route_file_with_a_performance_model_sends_the_top_gain_records(tmp_path):
    import torch

    from alignlab.data.io import read_records, write_records
    from alignlab.judges.base import Judge
    from alignlab.recipes.curation.route import route_file

    class LengthJudge(Judge):
        name = "length"

        def prefer_many(self, prompts, a, b):
            return torch.tensor([1.0 if len(x) > len(y) else 0.0 for x, y in zip(a, b)])

    class FakeApp:  # the app's two admin endpoints, recording what they get
        def __init__(self):
            self.tasks = []

        def post(self, path, json, headers):
            if path.endswith("/tasks"):
                self.tasks += json["records"]
            body = {"id": 1} if path == "/api/admin/projects" else {"added": len(json["records"])}
            return type("R", (), {"status_code": 200, "json": lambda self: body, "text": ""})()

    records = _pool(30)
    write_records(records, tmp_path / "pairs.jsonl")
    f = instance_features(records, meta_keys=["domain"])
    model = PerformanceModel(f.names, np.array([TRUE.get(n, 0.0) for n in f.names]), 0.5)
    model.save(tmp_path / "ppm.json")
    app = FakeApp()
    report = route_file(
        str(tmp_path / "pairs.jsonl"), 6, LengthJudge(), "length", tmp_path / "ai.jsonl", "http://app", "t",
        "p", human_out=tmp_path / "human.jsonl", client=app, performance_model=str(tmp_path / "ppm.json"),
        feature_meta=("domain",),
    )  # fmt: skip
    gain = _true_gain(f)
    sent = [r.prompt for r in read_records(tmp_path / "human.jsonl")]
    expected = [records[i].prompt for i in np.argsort(-gain, kind="stable")[:6]]
    assert sent == expected and len(app.tasks) == 6
    assert report.extra["to_people"] == 6 and report.extra["to_ai"] == 24


def test_route_cli_refuses_a_file_that_is_not_a_performance_model(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from alignlab.data.io import write_records

    write_records(_pool(4), tmp_path / "pairs.jsonl")
    (tmp_path / "ppm.json").write_text('{"weights": [1, 2]}')
    (tmp_path / "rules.py").write_text("def length(completions):\n    return [len(c) for c in completions]\n")
    judge = '{"name": "reward_function", "function": "%s:length"}' % (tmp_path / "rules.py")
    cli = str(Path(sys.executable).with_name("alignlab"))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    args = [cli, "data", "route", str(tmp_path / "pairs.jsonl"), "--budget", "1", "--judge", judge]
    args += ["--ai-out", str(tmp_path / "ai.jsonl"), "--performance-model", str(tmp_path / "ppm.json")]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 1 and "not a performance model" in result.stderr
    assert "Traceback" not in result.stderr
