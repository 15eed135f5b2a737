"""Every registered objective trains 20 steps of `alignlab train` on the tiny model: finite loss, loadable model."""

import json
import math

import pytest
from transformers import AutoModelForCausalLM

from alignlab.config import load_config
from alignlab.data.builtin import builtin_records
from alignlab.objectives import all_specs
from alignlab.train.trainer import train


def universal_records(name: str) -> list[dict]:
    """Pairs that carry every kind of feedback at once, plus the extra data a few methods need."""
    rows = []
    for i, record in enumerate(builtin_records("pairs", 48)):
        row = record.to_dict()
        row["labels"] = [True, False]
        row["scores"] = [{"score": 8.0}, {"score": 3.0 + i % 3}]
        row["critique"] = ["This answer is correct.", "This answer is wrong."]
        row["spans"] = [[], [{"start": 0, "end": 1, "label": "wrong", "weight": 1.0}]]
        if name == "d2o":  # self-generated samples from the reference policy, marked by role
            row["completions"].append("sorry")
            row["labels"].append(False)
            row["ranking"].append(1)
            row["scores"].append({"score": 0.0})
            row["critique"].append(None)
            row["spans"].append([])
            row["roles"] = ["", "", "sample"]
        if name == "selm":  # the reference model's own response to the prompt
            row["completions"].append("yes")
            row["labels"].append(False)
            row["ranking"].append(1)
            row["scores"].append({"score": 0.0})
            row["critique"].append(None)
            row["spans"].append([])
            row["roles"] = ["", "", "reference_response"]
        if name == "longpo":
            row["meta"] = {"long_context": "context " * 6 + row["prompt"], "short_context": row["prompt"]}
        rows.append(row)
    return rows


REWARD_FAMILY = "reward_model"
# Online objectives train on rollouts, not on a data file: tests/train/test_online_methods.py runs each
# of them end to end from its example config.
ONLINE_FAMILY = "online_rl"


@pytest.mark.parametrize(
    "name", [s.name for s in all_specs() if s.family not in (REWARD_FAMILY, ONLINE_FAMILY)]
)
def test_twenty_steps_of_every_objective(name, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in universal_records(name)) + "\n")
    config = load_config(
        None,
        [f"out={tmp_path / 'run'}", "train.progress=false", "train.steps=20", "train.batch_size=4",
         "train.learning_rate=1e-3", f"data.train={data}", f"objectives.0.name={name}",
         f"reference.cache_dir={tmp_path / 'cache'}"],
    )  # fmt: skip
    result = train(config)
    losses = [
        json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(losses) == 20 and all(isinstance(x, float) and math.isfinite(x) for x in losses)
    model = AutoModelForCausalLM.from_pretrained(result.model_dir, use_safetensors=True)
    assert model.config.vocab_size == 512
