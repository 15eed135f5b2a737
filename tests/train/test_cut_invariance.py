"""A step's loss and gradients do not depend on how it is cut (micro-batches, processes).

Weighted records, a sequence-mean loss (sft, token means per completion), a pair loss on records that
bvpo_mix reweights (simpo, the case where per-micro-batch means gave 0.9856 instead of 0.9018) and a
token-mean loss normalised by the loop's global token count: micro-batch sizes 1, 2 and the whole batch give
the same loss and gradients, which also equal the loss computed here from per-record engine scores."""

import json
import sys
from pathlib import Path

import pytest
import torch

from alignlab.data.batching import make_batch
from alignlab.data.builtin import builtin_records
from tests.train._runs import run_cli
from tests.train._step_grads import step_loss_and_grads

WEIGHTS = [1.0, 2.0, 0.5, 3.0, 1.0, 4.0, 0.25, 2.0]
EMPTY = {1, 4}  # records marked as empty-trace pairs for bvpo_mix


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("cut") / "weighted.jsonl"
    with open(path, "w") as f:
        for i, record in enumerate(builtin_records("pairs")[:8]):
            row = {**record.to_dict(), "weight": WEIGHTS[i]}
            if i in EMPTY:
                row["meta"] = {"role": "no_trace"}
            f.write(json.dumps(row) + "\n")
    return path


def settings(tmp_path, data, name, *more):
    return [f"out={tmp_path / name}", f"data.train={data}", "train.batch_size=8",
            f"reference.cache_dir={tmp_path / 'cache'}", *more]  # fmt: skip


def assert_same(a, b):
    loss_a, grads_a = a
    loss_b, grads_b = b
    assert loss_a == pytest.approx(loss_b, rel=1e-6, abs=1e-7)
    assert grads_a.keys() == grads_b.keys() and grads_a
    scale = max(float(g.abs().max()) for g in grads_a.values())
    for name in grads_a:
        assert float((grads_a[name] - grads_b[name]).abs().max()) <= 1e-5 * scale, name


def per_record_sft(tmp_path, data):
    """(weight, -log π(y_w)/|y_w|, tokens of all its completions, -log π(y_w)) of each record's chosen answer
    y_w, scored one record at a time."""
    from alignlab.config import load_config
    from alignlab.train.trainer import Trainer

    trainer = Trainer(load_config(None, ["train.progress=false", *settings(tmp_path, data, "probe")]))
    trainer._setup()
    ctx = trainer.context
    out = []
    with torch.no_grad():
        for group in trainer.train_data.groups:
            record = trainer.train_data.records[group.record_index]
            best = min(range(record.k), key=lambda i: record.ranking[i])
            batch = make_batch(trainer.train_data.records, [group], "separate")
            scores = ctx.engine(ctx.policy, batch, frozenset())
            nll, length = -float(scores.logps[best]), float(scores.lengths[best])
            out.append((record.weight, nll / length, float(scores.lengths.sum()), nll))
    return out


@pytest.mark.parametrize("micro", [1, 2])
def test_weighted_sequence_mean_sft(tmp_path, data, micro):
    whole = step_loss_and_grads(settings(tmp_path, data, "whole", "objectives.0.name=sft"))
    rows = per_record_sft(tmp_path, data)
    by_hand = sum(w * m for w, m, _, _ in rows) / sum(w for w, *_ in rows)
    assert whole[0] == pytest.approx(by_hand, rel=1e-5)
    cut = step_loss_and_grads(
        settings(tmp_path, data, "cut", "objectives.0.name=sft", f"train.micro_batch_size={micro}")
    )
    assert_same(whole, cut)
    # Per-micro-batch weighted means averaged by micro-batch size differ: the test can fail.
    naive = sum(
        sum(w * m for w, m, _, _ in rows[i : i + micro]) / sum(w for w, *_ in rows[i : i + micro]) * micro / 8
        for i in range(0, 8, micro)
    )
    assert abs(naive - by_hand) > 1e-3


@pytest.mark.parametrize("micro", [1, 2])
def test_token_mean_loss_uses_the_global_token_count(tmp_path, data, micro):
    whole = step_loss_and_grads(settings(tmp_path, data, "whole", "objectives.0.name=sft"), token_mean=True)
    rows = per_record_sft(tmp_path, data)
    # The loop's token count is every scored completion's tokens (chosen and rejected alike).
    assert whole[0] == pytest.approx(sum(n for *_, n in rows) / sum(t for _, _, t, _ in rows), rel=1e-5)
    cut = step_loss_and_grads(
        settings(tmp_path, data, "cut", "objectives.0.name=sft", f"train.micro_batch_size={micro}"),
        token_mean=True,
    )
    assert_same(whole, cut)


def test_bvpo_weighted_simpo_the_issue_case(tmp_path, data):
    simpo = ["objectives.0.name=simpo", "objectives.0.modifiers.bvpo_mix.alpha=0.25"]
    whole = step_loss_and_grads(settings(tmp_path, data, "whole", *simpo))
    for micro in (1, 2):
        assert_same(
            whole,
            step_loss_and_grads(
                settings(tmp_path, data, f"m{micro}", *simpo, f"train.micro_batch_size={micro}")
            ),
        )


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path, data):
    """gloo, CPU: the same loss and gradients with the global batch split over two processes."""
    accelerate = str(Path(sys.executable).parent / "accelerate")
    launcher = [accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m"]  # fmt: skip
    for name, extra, token_mean in (
        ("simpo", ["objectives.0.name=simpo", "objectives.0.modifiers.bvpo_mix.alpha=0.25"], []),
        ("token_mean", ["objectives.0.name=sft"], ["--token-mean"]),
    ):
        args = [
            a
            for s in settings(tmp_path, data, name, *extra, "train.micro_batch_size=2")
            for a in ("--set", s)
        ]
        one = run_cli([str(tmp_path / f"{name}-1.pt"), *token_mean, *args], module="tests.train._step_grads")
        assert one.returncode == 0, one.stderr
        two = run_cli(
            [str(tmp_path / f"{name}-2.pt"), *token_mean, *args],
            launcher=launcher,
            module="tests.train._step_grads",
        )
        assert two.returncode == 0, two.stderr
        a, b = (torch.load(tmp_path / f"{name}-{n}.pt") for n in (1, 2))
        assert_same((a["loss"], a["grads"]), (b["loss"], b["grads"]))
