"""Standard metrics (TRL names) computed by hand, and merged into every objective's metrics."""

from __future__ import annotations

import pytest
import torch

from alignlab.data.feedback import Feedback
from alignlab.objectives import Objective
from alignlab.objectives.metrics import standard_metrics
from alignlab.objectives.views import PairBatch, PointBatch
from alignlab.scoring.scores import Scores


def _pairs() -> PairBatch:
    chosen = Scores.from_logps(torch.tensor([-1.0, -4.0]), None, torch.tensor([-2.0, -3.0]))
    rejected = Scores.from_logps(torch.tensor([-3.0, -5.0]), None, torch.tensor([-2.0, -6.0]))
    return PairBatch(chosen, rejected, torch.ones(2))


def test_pair_metrics_by_hand() -> None:
    m = standard_metrics(_pairs(), {"beta": 0.5})
    # rho_w = [1, -1], rho_l = [-1, 1]; rewards = 0.5 * rho
    assert float(m["logps/chosen"]) == pytest.approx(-2.5)
    assert float(m["logps/rejected"]) == pytest.approx(-4.0)
    assert float(m["rewards/chosen"]) == pytest.approx(0.0)
    assert float(m["rewards/rejected"]) == pytest.approx(0.0)
    assert float(m["rewards/margins"]) == pytest.approx(0.0)  # (0.5 + 0.5 + -0.5 - 0.5) / 2
    assert float(m["rewards/accuracies"]) == pytest.approx(0.5)  # first pair 0.5 > -0.5, second -0.5 < 0.5
    assert float(m["logratios/mean"]) == pytest.approx(0.0)  # mean of [1, -1, -1, 1]
    assert "kl" not in m  # a mean log-ratio on data completions is not a KL, and is not called one


def test_reference_free_pairs_have_no_kl_and_ipo_uses_tau() -> None:
    chosen = Scores.from_logps(torch.tensor([-1.0]))
    rejected = Scores.from_logps(torch.tensor([-3.0]))
    m = standard_metrics(PairBatch(chosen, rejected, torch.ones(1)), {"beta": 2.0})
    assert "logratios/mean" not in m and float(m["rewards/margins"]) == pytest.approx(4.0)
    m = standard_metrics(_pairs(), {"tau": 0.1})
    assert float(m["rewards/chosen"]) == pytest.approx(0.0) and float(m["rewards/margins"]) == pytest.approx(
        0.0
    )
    assert float(standard_metrics(_pairs(), {})["rewards/margins"]) == pytest.approx(0.0)


def test_point_metrics_logratio_mean() -> None:
    items = Scores.from_logps(torch.tensor([-1.0, -2.0, -6.0]), None, torch.tensor([-2.0, -2.0, -3.0]))
    m = standard_metrics(PointBatch(items, torch.ones(3)), {})
    assert float(m["logratios/mean"]) == pytest.approx((1.0 + 0.0 - 3.0) / 3)


def test_metrics_reach_the_objective_output() -> None:
    scores = Scores.from_logps(
        torch.tensor([-1.0, -3.0, -4.0, -5.0]), None, torch.tensor([-2.0, -2.0, -3.0, -6.0])
    )
    loss, metrics = Objective.from_config({"name": "dpo", "beta": 0.5})(scores, Feedback.for_pairs(2))
    for key in (
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "logratios/mean",
    ):
        assert key in metrics
    assert metrics["rewards/accuracies"] == pytest.approx(0.5)
    assert metrics["logps/rejected"] == pytest.approx(-4.0)


def test_online_kl_metric_is_k3_and_never_negative() -> None:
    """The online objectives' ``kl``: per-token k3 = e^ℓ − ℓ − 1 (ℓ = log π_ref − log π), mean over the
    completion tokens (TRL's GRPO metric), computed here by hand with numpy."""
    import numpy as np

    from alignlab.objectives.online_rl import _token_metrics
    from alignlab.objectives.views import RolloutBatch

    logps = np.array([[-1.0, -2.0, -0.5], [-3.0, -0.1, -9.0]])
    ref = np.array([[-2.0, -1.0, -0.5], [-1.0, -0.3, -1.0]])
    mask = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the second completion has 2 tokens
    items = Scores(
        logps=torch.tensor((logps * mask).sum(-1)),
        lengths=torch.tensor(mask.sum(-1)),
        token_logps=torch.tensor(logps),
        token_mask=torch.tensor(mask),
    )
    batch = RolloutBatch(items, {"ref_logps": torch.tensor(ref)}, torch.tensor([0, 0]), torch.ones(2))
    ell = ref - logps
    k3 = np.exp(ell) - ell - 1
    expected = (k3 * mask).sum() / mask.sum()
    k1 = ((logps - ref) * mask).sum() / mask.sum()
    assert k1 < 0  # the old k1 mean on these tokens would have reported a negative "KL"
    assert float(_token_metrics(batch)["kl"]) == pytest.approx(expected) and expected > 0
