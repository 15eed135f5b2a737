"""KTO's reference point z0 = max(0, mean ρ(y') over the mismatched completions) is taken over the whole
step's global batch (additive step statistics folded before the loss), so the loss equals numpy by hand,
with the same gradients, for micro-batch sizes 1, 2 and the whole batch. Before, each micro-batch used the
mean of its own mismatched completions: with micro-batches of one record the loss was 0.51023 against
0.50693 by hand (this test failed)."""

import numpy as np
import pytest

from tests.train import test_step_state
from tests.train.test_cut_invariance import assert_same
from tests.train.test_step_state import BETA, one_step, rewards_by_hand

files = test_step_state.files  # its fixture: labels data (KTO's prepare adds the mismatched completions)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_kto_reference_point_is_the_steps(files):
    root, reference = files
    runs = {micro: one_step(root, reference, "kto", "labels.jsonl", micro) for micro in (1, 2, None)}
    rows = rewards_by_hand(runs[None][3], reference)
    roles = [np.array(record.roles or [""] * record.k) for record, _ in rows]
    rho = [rewards / BETA for _, rewards in rows]  # ρ = log π − log π_ref of every completion
    mismatched = np.array([r[role == "kl"][0] for r, role in zip(rho, roles)])
    z0 = max(0.0, float(mismatched.mean()))
    assert z0 > 0 and np.ptp(mismatched) > 1e-3  # the term is on, and a partial mean would differ
    labels = np.concatenate([np.array(record.labels)[role == ""] for (record, _), role in zip(rows, roles)])
    own = np.concatenate([r[role == ""] for r, role in zip(rho, roles)])
    loss = np.where(labels > 0.5, 1 - sigmoid(BETA * (own - z0)), 1 - sigmoid(BETA * (z0 - own))).mean()
    for micro, (step_loss, *_) in runs.items():
        assert step_loss == pytest.approx(float(loss), rel=1e-6), micro
    for micro in (1, 2):
        assert_same(runs[None][:2], runs[micro][:2])
