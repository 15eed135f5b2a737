"""Section E feedback-conditioned objectives: prepare hooks on records (exact text) and losses on numbers.

csft, meet, c_rlft, leti, faft, reward_augmented_relabel (conditional.py); cut, chain_of_hindsight, ilf
(critique.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.data.feedback import Feedback
from alignlab.data.records import Record, RecordError, pair
from alignlab.objectives import Objective, get
from alignlab.objectives.views import ListBatch, PairBatch, PointBatch
from alignlab.scoring.scores import Scores
from tests.objectives._refs_ef import np_logsig, run, t, token_scores


def _texts(records):
    return [(r.prompt, r.completions, (r.context_prefixes or [None])[0], r.weight) for r in records]


# ------------------------------------------------------------------------------- csft / meet
@pytest.mark.parametrize("name", ["csft", "meet"])
def test_control_token_prepare(name):
    records = [
        pair("Q1", "good", "bad", id="p"),
        Record("Q2", ["ok", "no"], labels=[True, False], weight=0.5),
    ]
    out = get(name).prepare(records, good_token="<g>", bad_token="<b>")
    assert _texts(out) == [
        ("Q1", ["good"], "<g>", 1.0),
        ("Q1", ["bad"], "<b>", 1.0),
        ("Q2", ["ok"], "<g>", 0.5),
        ("Q2", ["no"], "<b>", 0.5),
    ]
    assert all(r.ranking is None and r.labels is None for r in out)  # every row is a demonstration


@pytest.mark.parametrize("name", ["csft", "meet", "c_rlft", "leti", "faft", "ilf"])
def test_conditioned_sft_losses_are_token_mean_nll(name):
    lp = np.array([[-0.5, -1.5, 0.0], [-0.2, -0.3, -0.4]])
    mask = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    batch = PointBatch(token_scores(lp, mask), torch.ones(2, dtype=torch.float64))
    expected = -(lp * mask).sum(-1) / mask.sum(-1)
    np.testing.assert_allclose(run(name, batch)[0].numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(run(name, batch, normalize="sum")[0].numpy(), -(lp * mask).sum(-1), rtol=1e-12)


# --------------------------------------------------------------------------------- C-RLFT
def test_c_rlft_prepare_tags_and_weights_by_source():
    records = [
        Record("Hi", ["expert answer"], source="GPT-4", weight=2.0),
        Record([{"role": "user", "content": "Hey"}], ["meh"], source="gpt-3.5"),
    ]
    out = get("c_rlft").prepare(records, expert_tag="<E> ", suboptimal_tag="<S> ")
    assert out[0].prompt == "<E> Hi" and out[0].weight == 2.0
    assert out[1].prompt == [{"role": "user", "content": "<S> Hey"}] and out[1].weight == pytest.approx(0.1)
    assert records[1].prompt[0]["content"] == "Hey"  # the input records are not mutated
    with pytest.raises(RecordError, match="source"):
        get("c_rlft").prepare([Record("Q", ["a"])])


def test_c_rlft_weights_reach_the_batch_reduction():
    scores = Scores.from_logps(t([-4.0, -9.0]), t([2.0, 3.0]))
    records = get("c_rlft").prepare(
        [Record("a", ["x"], source="gpt-4"), Record("b", ["y"], source="gpt-3.5")]
    )
    fb = Feedback(group_index=torch.tensor([0, 1]), weight=torch.tensor([r.weight for r in records]))
    loss, _ = Objective.from_config("c_rlft")(scores, fb)
    assert float(loss) == pytest.approx((1.0 * 2.0 + 0.1 * 3.0) / 1.1)


# ----------------------------------------------------------------------------------- LeTI
def test_leti_prepare_puts_reward_token_first_and_feedback_after_failed_programs():
    record = Record(
        "Write f.",
        ["def f(): return 1", "def f(): retur 1"],
        labels=[True, False],
        critique=[None, "SyntaxError: invalid syntax"],
    )
    out = get("leti").prepare([record], pass_token="<ok>", fail_token="<err>")
    assert [(r.prompt, r.completions) for r in out] == [
        ("<ok>Write f.", ["def f(): return 1"]),
        ("<err>Write f.", ["def f(): retur 1\n\nFeedback: SyntaxError: invalid syntax"]),
    ]
    with pytest.raises(RecordError, match="labels"):
        get("leti").prepare([Record("Q", ["a"])])


# ----------------------------------------------------------------------------------- FAFT
def test_faft_prepare_conditions_on_feedback_and_only_positive_is_sft():
    record = Record(
        "Plan a trip.", ["plan A", "plan B"], labels=[True, False], critique=[None, "over budget"]
    )
    out = get("faft").prepare([record])
    assert _texts(out) == [
        ("Plan a trip.", ["plan A"], None, 1.0),
        ("Plan a trip.", ["plan B"], "Feedback: over budget\nRevised answer: ", 1.0),
    ]
    positive_only = get("faft").prepare([Record("Q", ["a", "b"], labels=[True, True])])
    assert _texts(positive_only) == [("Q", ["a"], None, 1.0), ("Q", ["b"], None, 1.0)]  # plain demonstrations


# ------------------------------------------------------------------ reward-augmented relabelling
def test_reward_augmented_prepare_doubles_pairs_with_score_prompts():
    record = Record("Q", ["good", "bad"], ranking=[0, 1], scores=[{"score": 8}, {"score": 3.5}])
    out = get("reward_augmented_relabel").prepare([record], score_template="[score {score}] ")
    assert [(r.prompt, r.completions, r.ranking) for r in out] == [
        ("[score 8] Q", ["good", "bad"], [0, 1]),
        ("[score 3.5] Q", ["bad", "good"], [0, 1]),
    ]
    tie = Record("Q", ["a", "b"], scores=[{"score": 5}, {"score": 5}])
    assert get("reward_augmented_relabel").prepare([tie]) == []
    with pytest.raises(RecordError, match="scores"):
        get("reward_augmented_relabel").prepare([pair("Q", "a", "b")])


def test_reward_augmented_loss_is_dpo():
    lw, ll, rw, rl = (
        np.array([-3.0, -5.0]),
        np.array([-4.0, -2.5]),
        np.array([-3.5, -4.0]),
        np.array([-3.0, -3.0]),
    )
    batch = PairBatch(
        Scores.from_logps(t(lw), ref_logps=t(rw)), Scores.from_logps(t(ll), ref_logps=t(rl)), torch.ones(2)
    )
    loss, _ = run("reward_augmented_relabel", batch, beta=0.2)
    np.testing.assert_allclose(loss.numpy(), -np_logsig(0.2 * ((lw - rw) - (ll - rl))), rtol=1e-12)


# ------------------------------------------------------------------------------------ CUT
def test_cut_prepare_layout():
    record = Record("Q", ["right", "wrong"], labels=[True, False], critique=[None, "It is wrong."], id="c")
    out = get("cut").prepare([record], judgement_template="|J: {judgement}|")
    assert [(r.completions, r.context_prefixes, r.roles) for r in out] == [
        (["right"], None, None),
        (["wrong", "wrong"], ["|J: It is wrong.|", None], ["", "cut_plain"]),
    ]


# Group 0: Align-N (judgement scoring + plain scoring); group 1: Align-P (plain only).
J_LP = np.array([[-0.2, -1.0, -0.5, 0.0], [-0.7, -0.4, 0.0, 0.0]])
J_MASK = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
P_LP = np.array([[-0.9, -0.95, -0.4, 0.0], [0.0, 0.0, 0.0, 0.0]])  # plain scoring of group 0's tokens
P_MASK = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)


def _np_cut(threshold, weight):
    mle = -(J_LP * J_MASK).sum(-1) / J_MASK.sum(-1)
    n = int(P_MASK[0].sum())  # real tokens of group 0
    ratio = np.exp(J_LP[0, :n] - P_LP[0, :n])
    flagged = ratio > threshold
    p = np.exp(P_LP[0, :n])
    per_token = np.where(flagged, weight * np.log(1 - p), P_LP[0, :n])
    ul = -per_token.sum() / n
    return np.array([mle[0] + ul, mle[1]]), flagged


def _cut_flat():
    lp = np.stack([J_LP[0], P_LP[0], J_LP[1]])
    mask = np.stack([J_MASK[0], P_MASK[0], J_MASK[1]])
    scores = token_scores(lp, mask, grad=True)
    fb = Feedback(group_index=torch.tensor([0, 0, 1]), weight=torch.ones(2), roles=["", "cut_plain", ""])
    return scores, fb


def test_cut_value_through_the_pipeline():
    scores, fb = _cut_flat()
    obj = Objective.from_config({"name": "cut", "threshold": 1.1, "unlikelihood_weight": 0.5})
    loss, metrics = obj(scores, fb)
    expected, flagged = _np_cut(1.1, 0.5)
    assert flagged.tolist() == [True, False, False]  # ratios e^0.7, e^-0.05, e^-0.1
    assert float(loss.detach()) == pytest.approx(expected.mean(), rel=1e-12)
    loss.backward()
    # Flagged token of the plain scoring: d/dlogp of -(0.5·log(1 - p))/3 = 0.5·p/(1-p)/3 / 2 (batch mean)
    p0 = np.exp(P_LP[0, 0])
    assert scores.token_logps.grad[1, 0].item() == pytest.approx(0.5 * p0 / (1 - p0) / 3 / 2, rel=1e-10)
    # The ratio is detached: the judgement scoring only gets the MLE gradient -1/|y| / 2.
    np.testing.assert_allclose(scores.token_logps.grad[0, :3].numpy(), -1 / 3 / 2, rtol=1e-12)


def test_cut_without_judgement_effect_flags_nothing():
    """If the judgement does not change the token probabilities (ratio 1 < λ), nothing is flagged and the
    loss is MLE under the judgement plus plain NLL of the same tokens."""
    items = token_scores(J_LP[:1, None, :], J_MASK[:1, None, :])
    plain = token_scores(J_LP[:1, None, :], J_MASK[:1, None, :])
    batch = ListBatch(
        items,
        torch.zeros(1, 1),
        torch.ones(1, 1, dtype=torch.bool),
        torch.ones(1),
        aux={"cut_plain": plain},
        aux_mask={"cut_plain": torch.ones(1, 1, dtype=torch.bool)},
    )
    loss, metrics = run("cut", batch)
    nll = -(J_LP[0] * J_MASK[0]).sum() / 3
    assert float(loss) == pytest.approx(2 * nll) and float(metrics["cut/flagged_fraction"]) == 0.0


# -------------------------------------------------------------------------- Chain of Hindsight
def test_chain_of_hindsight_prepare_both_orders_score_the_same_tokens():
    records = [pair(f"Q{i}", "nice", "rude") for i in range(8)]
    out = get("chain_of_hindsight").prepare(
        records, good_phrase="Good: ", bad_phrase="Bad: ", separator=" | "
    )
    orders = {r.meta["coh_order"] for r in out}
    assert orders == {"good_first", "bad_first"}  # the seeded shuffle produced both orders
    for r in out:
        assert sorted(r.completions) == ["nice", "rude"]  # scored tokens: only model outputs
        first, second = r.completions
        phrase1, phrase2 = ("Good: ", "Bad: ") if first == "nice" else ("Bad: ", "Good: ")
        assert r.context_prefixes == [phrase1, phrase1 + first + " | " + phrase2]
        assert r.ranking is None
    again = get("chain_of_hindsight").prepare(
        records, good_phrase="Good: ", bad_phrase="Bad: ", separator=" | "
    )
    assert [r.completions for r in again] == [r.completions for r in out]  # deterministic for a seed
    with pytest.raises(RecordError, match="better and a worse"):
        get("chain_of_hindsight").prepare([Record("Q", ["a", "b"], ranking=[0, 0])])


def test_chain_of_hindsight_loss_is_nll_over_both_outputs():
    items = Scores.from_logps(t([[-4.0, -9.0], [-2.0, 0.0]]), t([[2.0, 3.0], [4.0, 1.0]]))
    batch = ListBatch(items, torch.zeros(2, 2), torch.tensor([[True, True], [True, False]]), torch.ones(2))
    np.testing.assert_allclose(run("chain_of_hindsight", batch)[0].numpy(), [13 / 5, 2 / 4])


# ------------------------------------------------------------------------------------ ILF
def test_ilf_prepare_selects_refinement():
    record = Record(
        "Summarise.",
        ["draft", "ref A", "ref B"],
        critique=["too long", None, None],
        scores=[{"sim": 0.0}, {"sim": 0.4}, {"sim": 0.9}],
    )
    (out,) = get("ilf").prepare([record])
    assert out.prompt == "Summarise." and out.completions == ["ref B"] and out.critique is None
    (single,) = get("ilf").prepare([Record("S", ["draft", "only refinement"], critique=["fix it", None])])
    assert single.completions == ["only refinement"]
    with pytest.raises(RecordError, match="refinement"):
        get("ilf").prepare([Record("S", ["draft"])])
