"""Cyclic (rock–paper–scissors) preferences: GPM learns them, a Bradley–Terry model cannot (GPM paper §5)."""

from __future__ import annotations

import numpy as np

from alignlab.eval.rm_metrics import evaluate_judge
from alignlab.judges.reward_model import load_judge
from tests.judges._worlds import cyclic_world, train_tiny_rm


def test_gpm_fits_a_cycle_that_bt_cannot(tmp_path):
    train_records = cyclic_world(1500, seed=0)
    test_records = cyclic_world(600, seed=1)
    # lr 1e-3: at 3e-3 the tiny backbone collapses to one hidden state for every input.
    settings = ["train.learning_rate=1e-3"]
    gpm_run = train_tiny_rm(
        train_records,
        tmp_path / "gpm",
        {"name": "gpm", "tau": 0.5},
        ["model.num_attributes=2", *settings],
        300,
    )
    bt_run = train_tiny_rm(train_records, tmp_path / "bt", {"name": "bt"}, settings, steps=300)
    gpm = evaluate_judge(load_judge(gpm_run, batch_size=300), test_records)
    bt = evaluate_judge(load_judge(bt_run, batch_size=300), test_records)
    print(f"held-out accuracy: GPM {gpm.accuracy:.3f}, BT {bt.accuracy:.3f}")
    assert gpm.accuracy >= 0.95
    assert bt.accuracy <= 0.60
    # BT's predictions stay near a coin flip: it cannot represent the cycle.
    assert np.abs(bt.p_chosen - 0.5).mean() < 0.25


def test_a_gpm_judge_cuts_inputs_as_its_training_run_did(tmp_path):
    run = train_tiny_rm(
        cyclic_world(16, seed=0),
        tmp_path / "gpm",
        {"name": "gpm"},
        ["model.num_attributes=2", "data.max_length=24", "data.max_prompt_length=10"],
        steps=1,
    )
    judge = load_judge(run)
    assert (judge.truncation.max_length, judge.truncation.max_prompt_length) == (24, 10)
    assert load_judge(run, max_length=40).truncation.max_length == 40  # an explicit limit wins
