"""Objectives' running state: training moves it, evaluation reads it and never moves it (BCO's δ, as TRL's
``bco_loss(do_train=False)``), through the objective and through the loop."""

import json

import numpy as np
import pytest
import torch

from alignlab.data.feedback import Feedback
from alignlab.objectives import Objective
from alignlab.scoring.scores import Scores


def softplus(x):
    return np.log1p(np.exp(x))


def labelled(logps, ref, labels):
    n = len(logps)
    scores = Scores(
        logps=torch.tensor(logps, dtype=torch.float64),
        lengths=torch.ones(n, dtype=torch.float64),
        ref_logps=torch.tensor(ref, dtype=torch.float64),
    )
    feedback = Feedback(
        group_index=torch.arange(n), weight=torch.ones(n, dtype=torch.float64), labels=torch.tensor(labels)
    )
    return scores, feedback


def test_bco_delta_moves_in_training_only_and_evaluation_uses_it():
    beta = 0.5
    bco = Objective.from_config({"name": "bco", "beta": beta})
    train_batch = labelled([-1.0, -2.0], [-2.0, -1.0], [1.0, 0.0])
    bco(*train_batch, training=True)
    r_train = beta * np.array([1.0, -1.0])
    delta = r_train.mean()
    assert bco.parts[0].state["delta"] == pytest.approx(delta)
    # An evaluation batch with large rewards: δ stays, and its loss is computed with the training δ.
    eval_batch = labelled([3.0, -4.0], [-1.0, -1.0], [1.0, 0.0])
    loss, metrics = bco(*eval_batch, training=False)
    r_eval = beta * np.array([4.0, -3.0])
    expected = (softplus(-(r_eval[0] - delta)) + softplus(r_eval[1] - delta)) / 2
    assert float(loss) == pytest.approx(expected)
    assert metrics["delta"] == pytest.approx(delta)
    assert bco.parts[0].state["delta"] == pytest.approx(delta) and bco.parts[0].state["count"] == 2
    # In training the same batch moves δ to the mean of all four rewards (the check above can fail).
    bco(*eval_batch, training=True)
    assert bco.parts[0].state["delta"] == pytest.approx(np.concatenate([r_train, r_eval]).mean())


def test_the_loop_never_moves_state_in_evaluation(tmp_path):
    """BCO runs with and without held-out data train on the same batches: the saved δ is the same."""
    from alignlab.config import load_config
    from alignlab.data.builtin import builtin_records
    from alignlab.data.conversions import convert
    from alignlab.train.trainer import train

    records = list(convert(builtin_records("pairs")[:24], "pairs_to_labels").records)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records[:32]))
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records[32:]))
    common = ["train.progress=false", f"data.train={tmp_path / 'train.jsonl'}", "objectives.0.name=bco",
              "train.steps=3", "train.batch_size=8", "train.learning_rate=1e-2", "train.eval_every=1",
              f"reference.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    with_eval = train(
        load_config(None, [*common, f"out={tmp_path / 'a'}", f"data.eval={tmp_path / 'eval.jsonl'}"])
    )
    without = train(load_config(None, [*common, f"out={tmp_path / 'b'}"]))
    assert with_eval.eval_before is not None and without.eval_before is None

    def saved_state(run):
        return torch.load(run.run_dir / "checkpoints" / "step-3" / "rng.pt", weights_only=False)["objective"][
            "0"
        ]

    a, b = saved_state(with_eval), saved_state(without)
    assert a["count"] == b["count"] == 3 * 8  # only training rewards were counted
    assert a["delta"] == pytest.approx(b["delta"], abs=1e-6)
