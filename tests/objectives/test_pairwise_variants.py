"""DPO variants of section B (objectives/pairwise_margin_variants.py and pairwise_extra_completions.py):
numpy values/gradients, limits, prepare hooks, tabular behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.records import Record
from alignlab.objectives import get, pairwise_loss
from alignlab.objectives.views import ListBatch
from alignlab.scoring.scores import Scores
from alignlab.sim.tabular import TabularWorld, random_world
from tests.objectives._pairwise_numpy import CHOSEN_LENGTHS as LW
from tests.objectives._pairwise_numpy import REF_CHOSEN as RW
from tests.objectives._pairwise_numpy import REF_REJECTED as RL
from tests.objectives._pairwise_numpy import REJECTED_LENGTHS as LL
from tests.objectives._pairwise_numpy import leaves, logsigmoid, numeric_grad

GAP = np.array([0.5, 2.0, 1.0, 0.1, 3.0])  # score / reward / advantage gaps of the 5 pairs


def _h(a, b):
    return (a - RW) - (b - RL)


def _dpo(a, b, beta=0.1):
    return -logsigmoid(beta * _h(a, b))


CASES = [
    ("odpo", {"beta": 0.1, "alpha": 1.0}, lambda a, b: -logsigmoid(0.1 * _h(a, b) - np.log(GAP))),
    (
        "madpo",
        {"beta": 0.1, "kappa": 0.7, "tau": 1.0, "max_weight": 1.5},
        lambda a, b: -np.minimum(1.5, np.exp(-0.7 * (GAP - 1.0))) * logsigmoid(0.1 * _h(a, b)),
    ),
    (
        "copg",
        {"beta": 0.2},
        lambda a, b: -GAP * (a - b) + 0.1 * _h(a, b) ** 2,
    ),
    ("step_apo", {"beta": 0.1, "advantage_scale": 0.5}, lambda a, b: -logsigmoid(0.1 * _h(a, b) - 0.5 * GAP)),
    (
        "dpo_3d_reg",
        {"beta_chosen": 0.2, "beta_rejected": 0.05, "sft_weight": 0.3},
        lambda a, b: -logsigmoid(0.2 * (a - RW) - 0.05 * (b - RL)) - 0.3 * a / LW,
    ),
    (
        "bco_pair",
        {"beta": 0.1, "reward_shift": False},
        lambda a, b: -logsigmoid(0.1 * (a - RW)) - logsigmoid(-0.1 * (b - RL)),
    ),
]


def _call(name, chosen, rejected, **params):
    return pairwise_loss(
        name,
        chosen,
        rejected,
        torch.tensor(RW),
        torch.tensor(RL),
        torch.tensor(LW),
        torch.tensor(LL),
        margin=torch.tensor(GAP),
        **params,
    )


@pytest.mark.parametrize(("name", "params", "formula"), CASES, ids=[c[0] for c in CASES])
def test_value_and_gradient_match_numpy(name, params, formula) -> None:
    chosen, rejected = leaves()
    loss = _call(name, chosen, rejected, **params)
    a, b = chosen.detach().numpy(), rejected.detach().numpy()
    np.testing.assert_allclose(loss.detach().numpy(), formula(a, b), rtol=1e-9, atol=1e-9)
    loss.sum().backward()
    grad_a, grad_b = numeric_grad(formula, a, b)
    np.testing.assert_allclose(chosen.grad.numpy(), grad_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rejected.grad.numpy(), grad_b, rtol=1e-5, atol=1e-6)


def test_limits_recover_dpo() -> None:
    chosen, rejected = leaves()
    a, b = chosen.detach(), rejected.detach()
    dpo = _dpo(a.numpy(), b.numpy())
    for name, params in [
        ("odpo", {"offset": "none"}),
        ("madpo", {"kappa": 0.0}),
        ("step_apo", {"advantage_scale": 0.0}),
        ("dpo_3d_reg", {"beta_chosen": 0.1, "beta_rejected": 0.1}),
        ("beta_dpo", {"alpha": 0.0, "filter_ratio": 0.0}),
        ("selm", {"alpha": 0.0}),
    ]:
        np.testing.assert_allclose(_call(name, a, b, **params).numpy(), dpo, atol=1e-12, err_msg=name)


def test_odpo_equals_log2_at_the_offset_and_rejects_non_positive_gaps() -> None:
    zero = torch.zeros(1, dtype=torch.float64)
    h = torch.tensor([10 * math.log(3.0)], dtype=torch.float64)  # beta*h = log 3 = Delta
    loss = pairwise_loss("odpo", h, zero, zero, zero, margin=torch.tensor([3.0], dtype=torch.float64))
    assert float(loss) == pytest.approx(math.log(2), abs=1e-12)
    with pytest.raises(ValueError, match="s\\(y_w\\) > s\\(y_l\\)"):
        pairwise_loss("odpo", zero, zero, zero, zero, margin=torch.tensor([0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="rating"):
        pairwise_loss("odpo", zero, zero, zero, zero)


def test_madpo_weight_is_positive_and_non_increasing_in_the_margin() -> None:
    zero = torch.zeros(50, dtype=torch.float64)
    gaps = torch.linspace(-5, 5, 50, dtype=torch.float64)
    loss = pairwise_loss("madpo", zero, zero, zero, zero, margin=gaps)
    weights = (loss / math.log(2)).numpy()
    assert (weights > 0).all() and (np.diff(weights) <= 1e-12).all() and weights.max() <= 5.0 + 1e-12


def test_bco_pair_running_mean_matches_numpy() -> None:
    chosen, rejected = leaves()
    state: dict = {}
    a, b = chosen.detach().numpy(), rejected.detach().numpy()
    first = _call("bco_pair", chosen.detach(), rejected.detach(), state=state).numpy()
    delta1 = np.concatenate([0.1 * (a - RW), 0.1 * (b - RL)]).mean()
    expected = -logsigmoid(0.1 * (a - RW) - delta1) - logsigmoid(-(0.1 * (b - RL) - delta1))
    np.testing.assert_allclose(first, expected, atol=1e-12)
    second_a, second_b = a + 1.0, b - 2.0
    second = _call("bco_pair", torch.tensor(second_a), torch.tensor(second_b), state=state).numpy()
    delta2 = 0.5 * (delta1 + np.concatenate([0.1 * (second_a - RW), 0.1 * (second_b - RL)]).mean())
    expected2 = -logsigmoid(0.1 * (second_a - RW) - delta2) - logsigmoid(-(0.1 * (second_b - RL) - delta2))
    np.testing.assert_allclose(second, expected2, atol=1e-12)
    zero = torch.zeros(3, dtype=torch.float64)
    assert float(pairwise_loss("bco_pair", zero, zero, zero, zero, state={}).mean()) == pytest.approx(
        2 * math.log(2)
    )


def test_beta_dpo_batch_beta_and_filtering_match_numpy() -> None:
    chosen, rejected = leaves()
    a, b = chosen.detach().numpy(), rejected.detach().numpy()
    state: dict = {}
    loss = _call(
        "beta_dpo", chosen.detach(), rejected.detach(), state=state, alpha=0.6, filter_ratio=0.0
    ).numpy()
    gap = _h(a, b)
    m0 = 0.1 * gap.mean()
    beta_batch = max(1e-3, 0.1 * (1 + 0.6 * (gap.mean() - m0)))
    np.testing.assert_allclose(loss, -logsigmoid(beta_batch * gap), atol=1e-12)
    assert float(state["gap_std"]) == pytest.approx(0.1 * gap.std(ddof=1))
    torch.manual_seed(0)
    filtered = _call(
        "beta_dpo", chosen.detach(), rejected.detach(), state={}, alpha=0.0, filter_ratio=0.4
    ).numpy()
    kept = filtered != 0
    assert kept.sum() == 3  # int(5 * 0.6)
    np.testing.assert_allclose(filtered[kept], _dpo(a, b)[kept] * 5 / 3, atol=1e-12)


def test_selm_adds_the_optimism_term_on_reference_responses() -> None:
    chosen, rejected = leaves()
    a, b = chosen.detach(), rejected.detach()
    aux_logps = torch.tensor(
        [[-3.0, -4.0], [-5.0, 0.0], [-1.0, -2.0], [-2.0, -2.0], [-6.0, -1.0]], dtype=torch.float64
    )
    aux_ref = aux_logps - 0.5
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, True], [True, True]])
    aux = {"reference_response": Scores.from_logps(aux_logps, None, aux_ref)}
    loss = _call("selm", a, b, alpha=0.01, aux=aux, aux_mask={"reference_response": mask}).numpy()
    np.testing.assert_allclose(loss, _dpo(a.numpy(), b.numpy()) + 0.01 * 0.1 * 0.5, atol=1e-12)
    with pytest.raises(ValueError, match="reference_response"):
        _call("selm", a, b)


def test_longpo_prepare_layout_and_short_context_reference() -> None:
    record = Record(
        prompt="Summarise.",
        completions=["good", "bad"],
        ranking=[0, 1],
        meta={"long_context": "LONG", "short_context": "SHORT"},
    )
    (out,) = get("longpo").prepare([record])
    assert out.completions == ["good", "bad", "good"]
    assert out.roles == ["", "", "short_chosen"]
    assert out.context_prefixes == ["LONG", "LONG", "SHORT"]
    chosen, rejected = leaves()
    a, b = chosen.detach(), rejected.detach()
    short_ref = torch.tensor(RW - 1.0).unsqueeze(-1)
    aux = {"short_chosen": Scores.from_logps(torch.zeros(5, 1, dtype=torch.float64), None, short_ref)}
    loss = _call(
        "longpo", a, b, aux=aux, aux_mask={"short_chosen": torch.ones(5, 1, dtype=torch.bool)}
    ).numpy()
    expected = -logsigmoid(0.1 * ((a.numpy() - (RW - 1.0)) - (b.numpy() - RL)))
    np.testing.assert_allclose(loss, expected, atol=1e-12)
    same = {
        "short_chosen": Scores.from_logps(
            torch.zeros(5, 1, dtype=torch.float64), None, torch.tensor(RW).unsqueeze(-1)
        )
    }
    np.testing.assert_allclose(
        _call(
            "longpo", a, b, aux=same, aux_mask={"short_chosen": torch.ones(5, 1, dtype=torch.bool)}
        ).numpy(),
        _dpo(a.numpy(), b.numpy()),
        atol=1e-12,
    )


def test_c3po_prepare_and_loss() -> None:
    records = [
        Record(prompt="in", completions=["follows", "base"], ranking=[0, 1]),
        Record(prompt="near", completions=["base answer"], meta={"c3po_scope": "near_scope"}),
    ]
    out = get("c3po").prepare(records)
    assert out[0] is records[0] and out[1].roles == ["near_scope"]
    items = Scores.from_logps(
        torch.tensor([[-2.0, -5.0], [0.0, 0.0]], dtype=torch.float64),
        torch.ones(2, 2),
        torch.tensor([[-3.0, -4.0], [0.0, 0.0]], dtype=torch.float64),
    )
    near = Scores.from_logps(
        torch.tensor([[0.0], [-6.0]], dtype=torch.float64),
        torch.tensor([[1.0], [3.0]]),
        torch.zeros(2, 1, dtype=torch.float64),
    )
    batch = ListBatch(
        items,
        torch.tensor([[0.0, 1.0], [math.inf, math.inf]]),
        torch.tensor([[True, True], [False, False]]),
        torch.ones(2),
        aux={"near_scope": near},
        aux_mask={"near_scope": torch.tensor([[False], [True]])},
    )
    loss = get("c3po").fn(batch, beta=0.1, lambda_near=0.5, lambda_out=1.0).numpy()
    assert loss[0] == pytest.approx(float(-logsigmoid(np.array(0.1 * ((-2 + 3) - (-5 + 4))))))
    assert loss[1] == pytest.approx(0.5 * 2.0)


def test_copg_tabular_training_reaches_the_kl_regularised_optimum() -> None:
    world = random_world(num_prompts=2, num_completions=4, seed=4)
    policy = world.train("copg", {"beta": 0.5}, steps=300).numpy()
    logits = world.ref_logp.numpy() + world.reward.numpy() / 0.5
    target = np.exp(logits - logits.max(-1, keepdims=True))
    target /= target.sum(-1, keepdims=True)
    assert 0.5 * np.abs(policy - target).sum(-1).max() < 0.02


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("odpo", {"beta": 0.5}),
        ("madpo", {"beta": 0.5}),
        ("beta_dpo", {"beta": 0.5, "filter_ratio": 0.0}),
        ("bco_pair", {"beta": 0.5}),
        ("step_apo", {"beta": 0.5, "advantage_scale": 0.1}),
        ("dpo_3d_reg", {"beta_chosen": 0.5, "beta_rejected": 0.25}),
    ],
)
def test_tabular_expected_reward_rises(name, params) -> None:
    reward = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    # deterministic preferences: the chosen completion always has the larger reward (positive gaps for odpo)
    pref = (reward[:, :, None] > reward[:, None, :]).double() + 0.5 * torch.eye(3, dtype=torch.float64)
    world = TabularWorld(ref_logp=torch.tensor([[0.0, 0.3, 0.6]]), reward=reward, preference=pref)
    policy = world.train(name, params, steps=60, optimizer="adam", lr=0.1)
    assert world.expected_reward(policy) > world.expected_reward(world.ref_probs) + 0.1
