"""seq2seq RM, POLAR, PIT, FSPO and fine-grained RM objectives: their prepare hooks give exactly the records
written out here, and their losses match numpy on the batches the engine would build."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.data.batching import feedback_tensors
from alignlab.data.records import Record, RecordError, Span, pair
from alignlab.data.reward_templates import PIT_TEMPLATE, POLAR_TEMPLATE, SEQ2SEQ_TEMPLATE
from alignlab.data.tokenize import Truncation, tokenize_records
from alignlab.judges.context_conditioned import Seq2SeqRewardJudge
from alignlab.models.tiny import tiny_model
from alignlab.objectives.registry import get
from alignlab.objectives.views import build_view
from alignlab.scoring.scores import Scores

_, TOK = tiny_model("llama", seed=1)


def _np_softplus(x):
    return np.log1p(np.exp(x))


def view_of(name, records, rewards=None, logps=None):
    """The batch objective ``name`` receives for ``records`` (after its prepare hook) with given scores."""
    spec = get(name)
    prepared = spec.prepare(records, **spec.prepare_kwargs(spec.check_params({})))
    groups, _ = tokenize_records(prepared, TOK, Truncation(max_length=256, max_prompt_length=128))
    feedback = feedback_tensors(prepared, groups, 256)
    n = feedback.num_completions
    rewards = torch.zeros(n) if rewards is None else torch.as_tensor(rewards, dtype=torch.float64)
    logps = torch.zeros(n) if logps is None else torch.as_tensor(logps, dtype=torch.float64)
    scores = Scores(
        logps=logps, lengths=torch.tensor([len(c) for g in groups for c in g.completion_ids]), rewards=rewards
    )
    return prepared, groups, build_view(spec.feedback, scores, feedback)


def loss_of(name, batch, **params):
    spec = get(name)
    out = spec.fn(batch, **spec.loss_kwargs({**spec.check_params({}), **params}))
    return (out[0] if isinstance(out, tuple) else out).detach().numpy()


# -------------------------------------------------------------------------------------------- seq2seq
def test_seq2seq_prepare_layout_and_sequence_nll():
    records = [pair("fix it", "good answer", "bad answer"), Record("q", ["x", "y", "z"], ranking=[2, 0, 1])]
    prepared, groups, batch = view_of("seq2seq_rm", records, logps=[-3.0, -1.5, -2.0, -4.0])
    # Pairs: (good, bad); then by rank y ≻ z ≻ x: (y, x), (y, z), (z, x) in index order.
    got = [(r.prompt, r.completions, r.context_prefixes) for r in prepared]
    t = SEQ2SEQ_TEMPLATE.format
    assert got == [
        ("fix it", ["good answer"], [t(rejected="bad answer")]),
        ("q", ["y"], [t(rejected="x")]),
        ("q", ["y"], [t(rejected="z")]),
        ("q", ["z"], [t(rejected="x")]),
    ]
    assert all(r.ranking is None and r.labels is None for r in prepared)
    # The judge reads the very context the engine trains on: prompt ids + context-prefix ids.
    judge = Seq2SeqRewardJudge(None, TOK)
    assert groups[0].prompt_ids + groups[0].context_ids[0] == judge.context_ids("fix it", "bad answer")
    lengths = np.array([len(g.completion_ids[0]) for g in groups])
    assert np.allclose(loss_of("seq2seq_rm", batch), [3.0, 1.5, 2.0, 4.0])
    assert np.allclose(loss_of("seq2seq_rm", batch, normalize=True), np.array([3.0, 1.5, 2.0, 4.0]) / lengths)
    with pytest.raises(RecordError, match="ranked pairs"):
        get("seq2seq_rm").prepare([Record("q", ["a"])])


# ---------------------------------------------------------------------------------------------- POLAR
def test_polar_triples_prefixes_and_loss():
    samples = {"q": {"p1": ["one a", "one b"], "p2": ["two a"], "p3": ["three a", "three b"]}}
    from alignlab.objectives.reward_prepared_inputs import polar_triples

    records = polar_triples(samples)
    # p1 (2 samples) vs p2, p3; p3 (2 samples) vs p1, p2; p2 has one sample so it is never the anchor.
    assert [(r.meta["reference"], r.completions) for r in records] == [
        ("one a", ["one b", "two a"]),
        ("one a", ["one b", "three a"]),
        ("three a", ["three b", "one a"]),
        ("three a", ["three b", "two a"]),
    ]
    # A discriminator using only "same policy as the reference" (first word) is right on every triple.
    same = lambda ref, y: float(ref.split()[0] == y.split()[0])  # noqa: E731
    assert all(
        same(r.meta["reference"], r.completions[0]) > same(r.meta["reference"], r.completions[1])
        for r in records
    )
    rewards = [3.0 * same(r.meta["reference"], y) for r in records for y in r.completions]
    prepared, _, batch = view_of("polar", records, rewards=rewards)
    assert prepared[0].context_prefixes == [POLAR_TEMPLATE.format(reference="one a")] * 2
    assert np.allclose(loss_of("polar", batch), _np_softplus(-3.0) * np.ones(4))  # −log σ(3 − 0)
    with pytest.raises(RecordError, match="meta.reference"):
        get("polar").prepare([pair("q", "a", "b")])


# ------------------------------------------------------------------------------------------------ PIT
def test_pit_prepare_both_orders_and_gap_loss():
    records = [pair("q", "better", "worse"), pair("r", "fine", "meh")]
    prepared, _, batch = view_of("pit_gap_reward", records, rewards=[2.0, -1.0, 0.5, 0.7])
    t = PIT_TEMPLATE.format
    assert prepared[0].completions == ["better", "worse"] and prepared[0].ranking == [0, 1]
    assert prepared[0].context_prefixes == [t(reference="worse"), t(reference="better")]
    # rewards are r_gap(x, y_l, y_w), r_gap(x, y_w, y_l) per pair → −log σ(difference).
    assert np.allclose(loss_of("pit_gap_reward", batch), _np_softplus(-np.array([3.0, -0.2])))

    spec = get("pit_gap_reward")
    anchored = spec.prepare(records[:1], **spec.prepare_kwargs(spec.check_params({"self_anchors": True})))[0]
    assert anchored.completions == ["better", "better", "worse", "worse"] and anchored.ranking == [0, 1, 1, 2]
    refs = ["worse", "better", "worse", "better"]
    assert anchored.context_prefixes == [t(reference=r) for r in refs]
    # BT over the 5 strictly ordered pairs (0>1, 0>2, 0>3, 1>3, 2>3) with gaps g = [2, 0.1, −0.2, −1].
    groups, _ = tokenize_records([anchored], TOK, Truncation(max_length=256, max_prompt_length=128))
    fb = feedback_tensors([anchored], groups, 256)
    g = torch.tensor([2.0, 0.1, -0.2, -1.0], dtype=torch.float64)
    view = build_view("rewards", Scores(logps=torch.zeros(4), lengths=torch.ones(4), rewards=g), fb)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]
    want = sorted(_np_softplus(-(g[i] - g[j]).item()) for i, j in pairs)
    assert np.allclose(sorted(loss_of("pit_gap_reward", view)), want)


# ----------------------------------------------------------------------------------------------- FSPO
def _user_pairs():
    rows = [
        ("u1", "q1", "a1", "b1"),
        ("u2", "q2", "a2", "b2"),
        ("u1", "q3", "b3", "a3"),
        ("u1", "q4", "a4", "b4"),
    ]
    out = []
    for user, q, w, lose in rows:
        r = pair(q, w, lose)
        r.annotator = user
        out.append(r)
    return out


def test_fspo_prompt_is_the_users_other_pairs_then_the_question():
    records = _user_pairs()
    spec = get("fspo_fewshot_pm")
    same = spec.prepare(records, shots=0)
    assert [r.prompt for r in same] == ["q1", "q2", "q3", "q4"]  # K = 0: exactly the bt inputs
    two = spec.prepare(records, shots=2)
    header = "Preferences this user gave before:\n"
    ex = "Example {i}\nQuestion: {q}\nPreferred: {w}\nNot preferred: {l}\n"
    tail = "\nNew question from the same user:\n"
    want_q1 = (
        header + ex.format(i=1, q="q3", w="b3", l="a3") + ex.format(i=2, q="q4", w="a4", l="b4") + tail + "q1"
    )
    want_q4 = (
        header + ex.format(i=1, q="q1", w="a1", l="b1") + ex.format(i=2, q="q3", w="b3", l="a3") + tail + "q4"
    )
    assert two[0].prompt == want_q1 and two[3].prompt == want_q4
    assert two[1].prompt == header + tail + "q2"  # u2 has no other pair
    assert [r.meta["fspo_shots"] for r in two] == [2, 0, 2, 2]
    assert [r.completions for r in two] == [r.completions for r in records]
    chat = pair([{"role": "user", "content": "hi"}], "x", "y")
    chat.annotator = "u1"
    out = spec.prepare([records[0], chat], shots=1)[1].prompt
    assert out == [{"role": "system", "content": (header + ex.format(i=1, q="q1", w="a1", l="b1") + tail).rstrip("\n")},
                   {"role": "user", "content": "hi"}]  # fmt: skip
    # The loss is BT on the rewards of the few-shot-conditioned inputs.
    _, _, batch = view_of("fspo_fewshot_pm", records, rewards=[1.0, 0.0, -0.5, 0.5, 2.0, 2.0, 0.3, -0.3])
    assert np.allclose(loss_of("fspo_fewshot_pm", batch), _np_softplus(-np.array([1.0, -1.0, 0.0, 0.6])))
    with pytest.raises(RecordError, match="annotator"):
        spec.prepare([pair("q", "a", "b")], shots=1)


# -------------------------------------------------------------------------------------- fine-grained
def test_fine_grained_segment_records_and_bce():
    text = "It is hot. It rains! Done"
    r = Record("q", [text], spans=[[Span(3, 5, "fact"), Span(21, 25, "rel")]])
    spec = get("fine_grained_rm")
    prepared = spec.prepare([r], **spec.prepare_kwargs(spec.check_params({})))
    assert [p.completions[0] for p in prepared] == ["It is hot.", "It is hot. It rains!", text]
    assert [p.scores[0] for p in prepared] == [
        {"fact": 0.0, "rel": 1.0},
        {"fact": 1.0, "rel": 1.0},
        {"fact": 1.0, "rel": 0.0},
    ]
    logits = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.5, 3.0]], dtype=torch.float64)
    _, _, batch = view_of("fine_grained_rm", [r], rewards=logits)
    labels = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    x = logits.numpy()
    bce = _np_softplus(x) - labels * x  # −[y log σ(x) + (1 − y) log(1 − σ(x))]
    assert np.allclose(loss_of("fine_grained_rm", batch), bce.mean(1))
    with pytest.raises(RecordError, match="spans"):
        spec.prepare([pair("q", "a", "b")], aspects="fact")
