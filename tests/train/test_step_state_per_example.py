"""Per-example step statistics: β-DPO's running margin statistics, filter and β_batch, MORE's task
weights and AOT's sort are folded once per step from every example of the global batch, so after one step the state, the
loss and the gradients equal numpy by hand for micro-batch sizes 1, 2 and the whole batch (and for two
processes), computed here from engine scores of one record at a time.

Before the per-example statistics (each micro-batch folded its own margins / task gradients), the step's
loss with micro-batch size 1 was 0.7289 for β-DPO against 0.7510 by hand (no filter) and 0.7107 (filter
0.25), MORE's was 0.7097 (0.7064 with micro-batches of 2) against 0.8339, and AOT's 0.7440 against 0.7307
(aot) and 0.7606 against 0.7571 (aot_unpaired): these tests failed."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from alignlab.data.batching import make_batch
from alignlab.data.builtin import builtin_records
from alignlab.models.tiny import save_tiny
from tests.train._runs import one_step, run_cli
from tests.train.test_cut_invariance import assert_same
from tests.train.test_step_state import BETA, rewards_by_hand, softplus

CUTS = [1, 2, None]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("per_example")
    with open(root / "pairs.jsonl", "w") as f:
        for i, record in enumerate(builtin_records("pairs")[:8]):
            f.write(json.dumps({**record.to_dict(), "source": "b" if i % 3 == 0 else "a"}) + "\n")
    # Answers of one length: the paired AOT margins are not ordered by length alone (the two random tiny
    # models would then order the 8 pairs alike, and sorting would change nothing).
    words = ["apple", "brick", "cloud", "drums", "eagle", "flute", "grape", "honey", "igloo", "jelly"]
    with open(root / "same_length.jsonl", "w") as f:
        for i in range(8):
            row = {
                "prompt": f"Say a word ({i}).",
                "completions": [words[i], words[(i + 3) % 10]],
                "ranking": [0, 1],
            }
            f.write(json.dumps(row) + "\n")
    return root, save_tiny(root / "reference", seed=7)


def settings(root, reference, name, micro, *extra, data="pairs"):
    return [
        "train.progress=false", f"out={root / 'runs' / f'{name}-{micro}'}", f"data.train={root / f'{data}.jsonl'}",
        "train.batch_size=8", f"reference.path={reference}", f"reference.cache_dir={root / 'cache'}",
        f"objectives.0.name={name}", *extra, *([f"train.micro_batch_size={micro}"] if micro else []),
    ]  # fmt: skip


def margins_by_hand(trainer, reference):
    """h = (log π − log π_ref)(y_w) − (log π − log π_ref)(y_l) of every pair, one record at a time."""
    rows = rewards_by_hand(trainer, reference)
    return np.array([(r[rec.ranking.index(0)] - r[rec.ranking.index(1)]) / BETA for rec, r in rows])


def beta_dpo_by_hand(h, alpha, keep):
    """State and loss of β-DPO's first step (running statistics from 0, momentum 0.9) for kept pairs."""
    m0, sigma = 0.1 * h.mean(), 0.1 * h.std(ddof=1)
    beta_batch = max(1e-3, BETA * (1 + alpha * (h[keep].mean() - m0)))
    return m0, sigma, beta_batch, softplus(-beta_batch * h[keep]).mean()


@pytest.mark.parametrize("filter_ratio", [0.0, 0.25])
def test_beta_dpo_step_equals_numpy_for_every_cut(files, filter_ratio):
    root, reference = files
    extra = [
        f"objectives.0.beta={BETA}",
        "objectives.0.alpha=0.6",
        f"objectives.0.filter_ratio={filter_ratio}",
    ]
    runs = {micro: one_step(settings(root, reference, "beta_dpo", micro, *extra)) for micro in CUTS}
    h = margins_by_hand(runs[None][3], reference)
    assert np.ptp(h) > 1e-3
    keep = np.ones(8, dtype=bool)
    if filter_ratio:
        m0, sigma = 0.1 * h.mean(), 0.1 * h.std(ddof=1)
        weights = torch.tensor(np.exp(-0.5 * ((h - m0) / sigma) ** 2))
        # The documented draw: torch.multinomial with a generator seeded by (seed 0, step 0).
        drawn = torch.multinomial(weights, 6, replacement=False, generator=torch.Generator().manual_seed(0))
        keep = np.zeros(8, dtype=bool)
        keep[drawn.numpy()] = True
    m0, sigma, beta_batch, loss = beta_dpo_by_hand(h, 0.6, keep)
    for micro, (step_loss, _, state, _) in runs.items():
        assert step_loss == pytest.approx(float(loss), rel=1e-5), micro
        assert state["gap_mean"] == pytest.approx(m0, abs=1e-6), micro
        assert state["gap_std"] == pytest.approx(sigma, rel=1e-5), micro
        assert state["beta_batch"] == pytest.approx(beta_batch, rel=1e-5), micro
        assert state["kept_fraction"] == keep.mean() and state["draws"] == 1, micro
    for micro in (1, 2):
        assert_same(runs[None][:2], runs[micro][:2])
    # A per-micro-batch β (the old update) differs: a lone pair's batch has its own mean and no spread.
    assert abs(BETA * (1 + 0.6 * 0.9 * h[0]) - beta_batch) > 1e-3


def logps_by_hand(trainer, reference_dir):
    """(policy, reference) summed log-probs of (y_w, y_l) of every pair, one record at a time."""
    ctx = trainer.context
    reference = AutoModelForCausalLM.from_pretrained(reference_dir).eval()
    out = []
    with torch.no_grad():
        for group in trainer.train_data.groups:
            record = trainer.train_data.records[group.record_index]
            batch = make_batch(trainer.train_data.records, [group], "separate")
            order = [record.ranking.index(0), record.ranking.index(1)]
            policy = ctx.engine(ctx.policy, batch, frozenset()).logps.double().numpy()[order]
            ref = ctx.engine(reference, batch, frozenset()).logps.double().numpy()[order]
            out.append((policy, ref))
    return np.array([p for p, _ in out]), np.array([r for _, r in out])


@pytest.mark.parametrize("name", ["aot", "aot_unpaired"])
def test_aot_sorts_the_whole_step(files, name):
    """AOT's loss is ℓ of sorted values matched over the whole step's 8 pairs (numpy by hand); micro-batches
    of 1 and 2 pairs give the same loss and gradients (each micro-batch sorted alone would give ℓ(u_j − u_ref_j)
    for a lone pair)."""
    root, reference = files
    data = "same_length" if name == "aot" else "pairs"
    runs = {
        micro: one_step(settings(root, reference, name, micro, f"objectives.0.beta={BETA}", data=data))
        for micro in CUTS
    }
    policy, ref = logps_by_hand(runs[None][3], reference)
    if name == "aot":
        delta = np.sort(policy[:, 0] - policy[:, 1]) - np.sort(ref[:, 0] - ref[:, 1])
        lone = (policy[:, 0] - policy[:, 1]) - (ref[:, 0] - ref[:, 1])
    else:
        rho = policy - ref
        delta = np.sort(rho[:, 0]) - np.sort(rho[:, 1])
        lone = rho[:, 0] - rho[:, 1]
    loss = softplus(-BETA * delta).mean()
    assert abs(softplus(-BETA * lone).mean() - loss) > 1e-4  # the cut-per-pair sort differs
    for micro, (step_loss, *_) in runs.items():
        assert step_loss == pytest.approx(float(loss), rel=1e-5), micro
    for micro in (1, 2):
        assert_same(runs[None][:2], runs[micro][:2])


def reward_rows_by_hand(trainer):
    """(task, r_w, r_l, h_w, h_l) of every pair, scored one record at a time outside the loop."""
    ctx = trainer.context
    out = []
    with torch.no_grad():
        for group in trainer.train_data.groups:
            record = trainer.train_data.records[group.record_index]
            batch = make_batch(trainer.train_data.records, [group], "separate")
            scores = ctx.engine(ctx.policy, batch, ctx.needs)
            w, lose = record.ranking.index(0), record.ranking.index(1)
            r, hidden = scores.rewards.double().numpy(), scores.hidden.double().numpy()
            out.append((record.scores[0]["__more_task"], r[w], r[lose], hidden[w], hidden[lose]))
    return out


def test_more_step_equals_numpy_for_every_cut(files):
    root, reference = files
    runs = {micro: one_step(settings(root, reference, "more", micro)) for micro in CUTS}
    rows = reward_rows_by_hand(runs[None][3])
    task = np.array([t for t, *_ in rows])
    d = np.array([rw - rl for _, rw, rl, _, _ in rows])
    grad = np.stack([-(1 / (1 + np.exp(d_i))) * (hw - hl) for d_i, (*_, hw, hl) in zip(d, rows)])
    g0, g1 = grad[task == 0].mean(0), grad[task == 1].mean(0)
    gamma = np.clip(g1 @ (g1 - g0) / ((g0 - g1) @ (g0 - g1)), 0, 1)  # min-norm point of two vectors
    assert 0.01 < gamma < 0.99  # both tasks weigh, unequally
    weight = np.where(task == 0, 2 * gamma, 2 * (1 - gamma))
    loss = (weight * softplus(-d)).mean()
    for micro, (step_loss, _, state, _) in runs.items():
        assert step_loss == pytest.approx(float(loss), rel=1e-5), micro
        assert state["grad_1"].numpy() == pytest.approx(g1, abs=1e-6), micro
        assert state["lambda"]["0"] == pytest.approx(gamma, abs=1e-5), micro
    for micro in (1, 2):
        assert_same(runs[None][:2], runs[micro][:2])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "extra", "keys"),
    [
        (
            "beta_dpo",
            [f"objectives.0.beta={BETA}", "objectives.0.filter_ratio=0.25"],
            ("gap_std", "beta_batch"),
        ),
        ("more", [], ("lambda",)),
        ("aot_unpaired", [f"objectives.0.beta={BETA}"], ()),  # a pair's partners sit on the other process
    ],
)
def test_two_processes_equal_one(files, tmp_path, name, extra, keys):
    """gloo, CPU, micro-batches of 1 pair: every pair's row gathered from both processes (4 each), so the
    state, loss and gradients match one process with the whole batch."""
    root, reference = files
    accelerate = str(Path(sys.executable).parent / "accelerate")
    launcher = [accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m"]  # fmt: skip
    out = {}
    for n, launch, micro in ((1, None, None), (2, launcher, 1)):
        given = settings(root, reference, name, micro, *extra)[1:]
        args = [a for s in [*given, f"out={tmp_path / str(n)}"] for a in ("--set", s)]
        run = run_cli([str(tmp_path / f"{n}.pt"), *args], launcher=launch, module="tests.train._step_grads")
        assert run.returncode == 0, run.stderr
        out[n] = torch.load(tmp_path / f"{n}.pt", weights_only=False)
    one, two = out[1]["state"]["0"], out[2]["state"]["0"]
    for key in keys:
        assert two[key] == pytest.approx(one[key], rel=1e-5), key
    assert_same((out[1]["loss"], out[1]["grads"]), (out[2]["loss"], out[2]["grads"]))
