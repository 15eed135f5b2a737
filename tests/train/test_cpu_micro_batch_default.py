"""On CPU with no micro-batch setting, a step of more than CPU_MICRO_BATCH_TOKENS positions is cut into
passes (bounded activation memory) and trains to the same weights as one pass over the whole batch."""

import json

from alignlab.config import load_config
from alignlab.train.step import CPU_MICRO_BATCH_TOKENS
from alignlab.train.trainer import train
from tests.train._runs import max_weight_difference


def config(tmp_path, name, *overrides):
    return load_config(
        None,
        [f"out={tmp_path / name}", "train.progress=false", "data.limit=48", "train.batch_size=24",
         "train.steps=2", "train.learning_rate=1e-3", "data.train=builtin:pairs", "objectives.0.name=dpo",
         f"reference.cache_dir={tmp_path / 'cache'}", *overrides],
    )  # fmt: skip


def step_lines(run):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "loss" in x]


def test_cpu_default_cuts_a_large_step_into_passes_with_the_same_result(tmp_path):
    default = train(config(tmp_path, "default"))
    one_pass = train(config(tmp_path, "one", "train.micro_batch_size=24"))
    cut, whole = step_lines(tmp_path / "default"), step_lines(tmp_path / "one")
    assert all(x["tokens"] > CPU_MICRO_BATCH_TOKENS for x in whole)  # the steps are over the budget
    assert all(x["micro_batches"] > 1 for x in cut) and all(x["micro_batches"] == 1 for x in whole)
    for a, b in zip(cut, whole):
        assert abs(a["loss"] - b["loss"]) < 1e-5
    # Summation order differs between the two, and Adam amplifies rounding in near-zero gradients (its
    # first steps move each weight by ~lr whatever the gradient's size): a bound well under lr = 1e-3 ...
    assert max_weight_difference(default.model_dir, one_pass.model_dir) < 5e-5
    # ... that a different batch does not meet
    other = train(config(tmp_path, "other", "train.batch_size=16"))
    assert max_weight_difference(default.model_dir, other.model_dir) > 1e-3
