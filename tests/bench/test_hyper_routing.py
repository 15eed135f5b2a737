"""bench/hyper_routing.py: HyPER's performance prediction model fitted on routings whose reward model is
really trained and measured, on a simulated set where the AI judge's labels are length-biased noise on two
of four domains (so the best use of people is there). Over 5 seeds the model's routing at a 25% budget
beats random routing of the same size by more than 2 standard errors and sends mostly those domains."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from alignlab.eval.paired import paired_test

BENCH = Path(__file__).resolve().parents[2] / "bench" / "hyper_routing.py"


def test_hyper_routing_beats_random_routing_at_a_quarter_budget():
    spec = importlib.util.spec_from_file_location("hyper_routing", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = [bench.run_seed(seed, 800, 120, [0.25], 20) for seed in range(5)]
    hyper = [r["budgets"]["0.25"]["hyper"] for r in runs]
    random_ = [r["budgets"]["0.25"]["random"] for r in runs]
    result = paired_test(hyper, random_)
    assert result.mean_difference > 2 * result.se > 0
    assert (
        np.mean([r["budgets"]["0.25"]["share_biased_domains_routed"] for r in runs]) > 0.7
    )  # 2 of 4 domains
    for r in runs:  # the two ends: people everywhere beat the biased AI everywhere
        assert r["all_human"] > r["all_ai"]
