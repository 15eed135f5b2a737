"""A stateful objective's running state does not depend on how a step is cut: BCO's δ (and bco_pair's) is
folded once per step from the whole global batch, so after one step it is the by-hand mean of the step's
rewards for micro-batch sizes 1, 2 and the whole batch, and the loss and gradients are the same for all three.

The reference is another tiny model (seed 7), so the rewards β·(log π − log π_ref) are not zero."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from alignlab.data.batching import make_batch
from alignlab.data.builtin import builtin_records
from alignlab.data.conversions import convert
from alignlab.models.tiny import save_tiny
from tests.train._runs import one_step as run_one_step
from tests.train._runs import run_cli
from tests.train.test_cut_invariance import assert_same

BETA = 0.5


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("state")
    pairs = builtin_records("pairs")[:8]
    labels = convert(pairs[:4], "pairs_to_labels").records  # 8 single completions, 4 good and 4 bad
    for name, records in (("labels", labels), ("pairs", pairs)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    return root, save_tiny(root / "reference", seed=7)


def one_step(root, reference, name, data, micro):
    overrides = [
        "train.progress=false", f"out={root / 'runs' / f'{name}-{micro}'}", f"data.train={root / data}",
        "train.batch_size=8", f"reference.path={reference}", f"reference.cache_dir={root / 'cache'}",
        f"objectives.0.name={name}", f"objectives.0.beta={BETA}",
        *([f"train.micro_batch_size={micro}"] if micro else []),
    ]  # fmt: skip
    return run_one_step(overrides)


def rewards_by_hand(trainer, reference_dir):
    """β·(log π − log π_ref) of every completion, scored one record at a time, outside the loop."""
    ctx = trainer.context
    reference = AutoModelForCausalLM.from_pretrained(reference_dir).eval()
    out = []
    with torch.no_grad():
        for group in trainer.train_data.groups:
            batch = make_batch(trainer.train_data.records, [group], "separate")
            policy = ctx.engine(ctx.policy, batch, frozenset()).logps.double().numpy()
            ref = ctx.engine(reference, batch, frozenset()).logps.double().numpy()
            out.append((trainer.train_data.records[group.record_index], BETA * (policy - ref)))
    return out


def softplus(x):
    return np.log1p(np.exp(x))


@pytest.fixture(scope="module")
def bco_runs(files):
    root, reference = files
    return {micro: one_step(root, reference, "bco", "labels.jsonl", micro) for micro in (1, 2, None)}


@pytest.mark.parametrize("micro", [1, 2, None])
def test_bco_delta_after_one_step_is_the_global_mean(files, bco_runs, micro):
    root, reference = files
    loss, _, state, trainer = bco_runs[micro]
    rows = rewards_by_hand(trainer, reference)
    r = np.concatenate([rewards for _, rewards in rows])
    assert len(r) == 8 and np.ptp(r) > 1e-3  # different rewards, so a partial mean would differ
    assert state["count"] == 8
    assert state["delta"] == pytest.approx(float(r.mean()), rel=1e-5, abs=1e-7)
    # The step's loss uses that δ for every example: mean of -log σ(±(r − δ)).
    good = np.array([record.labels[0] for record, _ in rows])
    by_hand = np.where(good, softplus(-(r - r.mean())), softplus(r - r.mean())).mean()
    assert loss == pytest.approx(float(by_hand), rel=1e-5)
    # Per-micro-batch δ (the old update) would give micro-batch 1 the mean of its own rewards only.
    if micro == 1:
        assert abs(r[0] - r.mean()) > 1e-3


def test_bco_loss_and_gradients_do_not_depend_on_the_cut(bco_runs):
    whole = bco_runs[None][:2]
    for micro in (1, 2):
        assert_same(whole, bco_runs[micro][:2])


def test_bco_pair_delta_is_one_step_mean(files):
    root, reference = files
    states = {micro: one_step(root, reference, "bco_pair", "pairs.jsonl", micro)[2:] for micro in (1, None)}
    _, trainer = states[None]
    r = np.concatenate([rewards for _, rewards in rewards_by_hand(trainer, reference)])
    for micro, (state, _) in states.items():
        assert state["count"] == 1, micro  # one step, one batch mean (not one per micro-batch)
        assert state["mean"] == pytest.approx(float(r.mean()), abs=1e-6), micro  # float32 engine


@pytest.mark.slow
@pytest.mark.parametrize(("name", "data", "key"), [("bco", "labels", "delta"), ("lcpo", "pairs", "epsilon")])
def test_two_processes_equal_one(files, tmp_path, name, data, key):
    """gloo, CPU: the state is folded from both processes' sums (all-reduced; BCO before the loss, LCPO after
    the step), so the state, loss and gradients match one process."""
    root, reference = files
    accelerate = str(Path(sys.executable).parent / "accelerate")
    launcher = [accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m"]  # fmt: skip
    settings = [f"data.train={root / f'{data}.jsonl'}", "train.batch_size=8", f"reference.path={reference}",
                f"reference.cache_dir={tmp_path / 'cache'}", f"objectives.0.name={name}",
                f"objectives.0.beta={BETA}", "train.micro_batch_size=2"]  # fmt: skip
    out = {}
    for n, launch in ((1, None), (2, launcher)):
        args = [a for s in [f"out={tmp_path / str(n)}", *settings] for a in ("--set", s)]
        run = run_cli([str(tmp_path / f"{n}.pt"), *args], launcher=launch, module="tests.train._step_grads")
        assert run.returncode == 0, run.stderr
        out[n] = torch.load(tmp_path / f"{n}.pt")
    one, two = out[1]["state"]["0"], out[2]["state"]["0"]
    assert one.keys() == two.keys() and key in one
    assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7)
    assert one.get("count") == two.get("count")
    assert_same((out[1]["loss"], out[1]["grads"]), (out[2]["loss"], out[2]["grads"]))


def test_lcpo_epsilon_folded_after_the_step_from_the_global_batch(files):
    """LCPO's loss uses the starting ε for every pair; ε after the step is m·ε0 + (1 − m)·mean(1 − w) over
    all 8 pairs (numpy), whatever the micro-batch size, and the loss and gradients do not depend on the cut."""
    root, reference = files
    runs = {micro: one_step(root, reference, "lcpo", "pairs.jsonl", micro) for micro in (1, 2, None)}
    rows = rewards_by_hand(runs[None][3], reference)
    h = np.array([(r[rec.ranking.index(0)] - r[rec.ranking.index(1)]) / BETA for rec, r in rows])
    eps0, m = 0.1, 0.9
    p = 1 / (1 + np.exp(-BETA * h))  # DPO base: P(y_w ≻ y_l) = σ(βh)
    w = (1 - eps0) * p / ((1 - eps0) * p + eps0 * (1 - p))
    loss = np.mean(w * softplus(-BETA * h) + (1 - w) * softplus(BETA * h))
    for micro, (step_loss, _, state, _) in runs.items():
        assert state["epsilon"] == pytest.approx(m * eps0 + (1 - m) * float((1 - w).mean()), abs=1e-7), micro
        assert step_loss == pytest.approx(float(loss), rel=1e-5), micro
    for micro in (1, 2):
        assert_same(runs[None][:2], runs[micro][:2])
