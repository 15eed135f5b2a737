"""bvpo_mix in the loop: the step loss is α·(trace pairs' loss) + (1-α)·(empty-trace pairs' loss).

The two parts are measured by separate runs on each subset alone, and mixed by hand here."""

import json

import pytest

from alignlab.config import ConfigError, load_config
from alignlab.data.builtin import builtin_records
from alignlab.train.trainer import train

EMPTY = {1, 4}  # records marked as empty-trace pairs


def write(path, indices):
    records = builtin_records("pairs")[:8]
    with open(path, "w") as f:
        for i in indices:
            row = records[i].to_dict()
            if i in EMPTY:
                row["meta"] = {**(row.get("meta") or {}), "role": "no_trace"}
            f.write(json.dumps(row) + "\n")
    return path


def first_loss(tmp_path, name, data, *extra):
    result = train(
        load_config(None, [f"out={tmp_path / name}", "train.progress=false", f"data.train={data}",
                           "objectives.0.name=simpo", "train.steps=1", "train.batch_size=8", *extra])
    )  # fmt: skip
    line = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    return line["loss"]


def test_mixture_of_the_two_estimators_by_hand(tmp_path):
    trace = first_loss(
        tmp_path, "trace", write(tmp_path / "t.jsonl", [0, 2, 3, 5, 6, 7]), "train.batch_size=6"
    )
    empty = first_loss(tmp_path, "empty", write(tmp_path / "e.jsonl", [1, 4]), "train.batch_size=2")
    both = write(tmp_path / "all.jsonl", range(8))
    mixed = first_loss(tmp_path, "mixed", both, "objectives.0.modifiers.bvpo_mix.alpha=0.25")
    assert mixed == pytest.approx(0.25 * trace + 0.75 * empty, rel=1e-5)
    assert abs(trace - empty) > 1e-3  # the two parts differ, so the mixture is a real check
    only_trace = first_loss(tmp_path, "alpha1", both, "objectives.0.modifiers.bvpo_mix.alpha=1.0")
    assert only_trace == pytest.approx(trace, rel=1e-5)  # METHODS.md: α = 1 is the trace-based loss


def test_no_empty_trace_records_is_a_clear_error(tmp_path):
    data = write(tmp_path / "t.jsonl", [0, 2, 3])
    with pytest.raises(ConfigError, match="meta.role"):
        first_loss(tmp_path, "none", data, "objectives.0.modifiers.bvpo_mix.alpha=0.5")
