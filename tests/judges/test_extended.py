"""BLEU, R³ relevance, MaxMin EM, fine-grained dense rewards, self-reference verdicts and seq2seq token
rewards, each against a hand computation, numpy, or a world with a known answer."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from alignlab.data.records import pair
from alignlab.data.segments import segment_labels, segment_text
from alignlab.judges.base import Judge
from alignlab.judges.context_conditioned import Seq2SeqRewardJudge
from alignlab.judges.fine_grained import FineGrainedRewardJudge, dense_token_rewards
from alignlab.judges.maxmin import MaxMinJudge, maxmin_em
from alignlab.judges.registry import get_judge
from alignlab.judges.rules import RuleJudge
from alignlab.judges.selfref import SELFREF_TEMPLATE, SelfReferenceJudge
from alignlab.judges.text_metrics import BleuJudge, RegularizedRelevanceJudge, sentence_bleu
from alignlab.models.tiny import tiny_model

LM, TOK = tiny_model("llama", seed=5)


def test_all_nine_names_are_registered():
    names = ["seq2seq_rm", "maxmin_mixture_rm", "polar", "pit_gap_reward", "fine_grained_rm"]
    names += ["r3_relevance_reward", "bleu_reward", "selfref_feedback_strength"]
    import alignlab.judges.fine_grained  # noqa: F401  (modules the registry list must name)
    import alignlab.judges.maxmin  # noqa: F401
    import alignlab.judges.selfref  # noqa: F401
    import alignlab.judges.text_metrics  # noqa: F401

    assert all(get_judge(n).name == n for n in names)
    assert get_judge("selfref_feedback_strength").kind == "preferences"


# ------------------------------------------------------------------------------------------------ BLEU
def test_sentence_bleu_against_hand_computation():
    hyp, ref = "the cat sat on the mat", "the cat is on the mat"
    # p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3 → exp smoothing 1/(2·3); equal lengths so BP = 1.
    assert sentence_bleu(hyp, [ref]) == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25, rel=1e-12)
    add1 = (5 / 6 * (3 + 1) / (5 + 1) * (1 + 1) / (4 + 1) * (0 + 1) / (3 + 1)) ** 0.25
    assert sentence_bleu(hyp, [ref], smooth="add1") == pytest.approx(add1, rel=1e-12)
    assert sentence_bleu(hyp, [ref], smooth="none") == 0.0
    # Short hypothesis: effective order 2, p1 = p2 = 1, BP = exp(1 − 6/2).
    assert sentence_bleu("the cat", [ref]) == pytest.approx(math.exp(-2.0), rel=1e-12)
    # Closest reference length (ties → shorter): c = 5, refs of 3 and 7 words → r = 3, BP = 1.
    # Every n-gram of the hypothesis is in the 7-word reference (p_n = 1); the closest reference length
    # is a tie (|3 − 5| = |7 − 5|) that goes to the shorter, r = 3 ≤ c, so BP = 1 (r = 7 would give 0.67).
    assert sentence_bleu("a b c d e", ["a b c", "a b c d e f g"]) == pytest.approx(1.0, rel=1e-12)
    assert sentence_bleu("a b c d e", ["a b c d e f g"]) == pytest.approx(math.exp(1 - 7 / 5), rel=1e-12)
    assert sentence_bleu("x y z", [ref]) == 0.0  # no match at all
    judge = BleuJudge({"q": [ref, "a mat"], "r": ["hello world"]})
    got = judge.score(["q", "r", "q"], [ref, "hello world", hyp]).numpy()
    assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(1.0)  # r(x, reference) = 1
    assert got[2] == pytest.approx(sentence_bleu(hyp, [ref, "a mat"]))
    with pytest.raises(ValueError, match="no reference outputs"):
        judge.score(["unknown"], ["a"])
    with pytest.raises(ValueError, match="smooth must be one of"):
        BleuJudge({}, smooth="floor")


# -------------------------------------------------------------------------------------------------- R³
def _np_bow_cos(a: str, b: str) -> float:
    import re
    from collections import Counter

    def vec(t):
        c = Counter(re.findall(r"\w+", t.lower()))
        v = {w: 1 + math.log(n) for w, n in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {w: x / norm for w, x in v.items()}

    va, vb = vec(a), vec(b)
    return sum(x * vb.get(w, 0.0) for w, x in va.items())


def test_r3_reward_against_hand_terms_and_query_copy_is_not_maximal():
    q = "how do plants make food"
    good = "plants make food by photosynthesis using sunlight"
    judge = RegularizedRelevanceJudge()
    # copy: 2 of the answer's 6 bigrams ("plants make", "make food") are in the query; no repeats; 7 words.
    want = _np_bow_cos(q, good) - 1.0 * (2 / 6) - 0.5 * 0.0 + 0.1 * (7 / 50)
    assert float(judge.score([q], [good])[0]) == pytest.approx(want, abs=1e-6)
    copied = float(judge.score([q], [q])[0])
    assert copied == pytest.approx(1.0 - 1.0 + 0.1 * 5 / 50, abs=1e-6)  # relevance 1 cancelled by copying
    assert copied < float(judge.score([q], [good])[0])
    rep = "food food food food"  # 3 bigrams, 1 distinct → repetition 2/3
    assert float(judge.score([q], [rep])[0]) == pytest.approx(
        _np_bow_cos(q, rep) - 0.0 - 0.5 * (2 / 3) + 0.1 * 4 / 50, abs=1e-6
    )
    # Deterministic function of (x, y): the same pair scores the same alone or inside any batch.
    batch = judge.score(["other question here", q, q], ["unrelated words", good, rep]).numpy()
    assert batch[1] == float(judge.score([q], [good])[0]) and batch[2] == float(judge.score([q], [rep])[0])
    table = {q: [1.0, 0.0], good: [0.6, 0.8]}
    custom = RegularizedRelevanceJudge(
        embed=lambda texts: np.array([table[t] for t in texts]), copy_weight=0.0
    )
    assert float(custom.score([q], [good])[0]) == pytest.approx(0.6 + 0.1 * 7 / 50, abs=1e-6)


# ------------------------------------------------------------------------------------------- MaxMin EM
WORDS = ["alpha", "beta", "gamma", "delta"]
THETA = np.array([1.5, -1.0, 0.5, -2.0])


def _phi(text: str) -> np.ndarray:
    return np.array([text.split().count(w) for w in WORDS], dtype=float)


class LinearJudge(Judge):
    """r(y) = θ·φ(y), φ = word counts over a known vocabulary (the fast 'reward model' of this test)."""

    def __init__(self, theta):
        self.theta = np.asarray(theta, dtype=float)

    def score(self, prompts, completions):
        return torch.tensor([float(self.theta @ _phi(c)) for c in completions])


L2 = 1e-2


def _diffs(records):
    return np.array(
        [_phi(r.completions[0]) - _phi(r.completions[1]) for r in records]
    )  # pair() puts chosen first


def train_linear_bt(records) -> LinearJudge:
    """M-step trainer: BT on Δφ with a small L2 penalty, solved by torch LBFGS."""
    d = torch.tensor(_diffs(records))
    theta = torch.zeros(len(WORDS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = -torch.nn.functional.logsigmoid(d @ theta).sum() + L2 * theta @ theta
        loss.backward()
        return loss

    opt.step(closure)
    return LinearJudge(theta.detach().numpy())


def _world(users_per_group=8, pairs_per_user=40, seed=0):
    rng = random.Random(seed)
    records, truth = [], {}
    for g, sign in enumerate((1.0, -1.0)):
        for u in range(users_per_group):
            user = f"g{g}u{u}"
            truth[user] = g
            for _ in range(pairs_per_user):
                a = " ".join(rng.choice(WORDS) for _ in range(3))
                b = " ".join(rng.choice(WORDS) for _ in range(3))
                p = 1 / (1 + math.exp(-sign * THETA @ (_phi(a) - _phi(b))))
                r = pair("q", a, b) if rng.random() < p else pair("q", b, a)
                r.annotator = user
                records.append(r)
    return records, truth


def test_maxmin_em_recovers_two_opposite_groups_and_k1_is_bt():
    records, truth = _world()
    fit = maxmin_em(records, train_linear_bt, groups=2, iterations=10, seed=3)
    # Purity: each found group's majority true group, counted over users.
    purity = 0
    for k in range(2):
        members = [truth[u] for u, g in fit.assignment.items() if g == k]
        purity += max(members.count(0), members.count(1)) if members else 0
    assert purity / len(truth) > 0.95
    # Each group's model points along ±θ* (cosine with the true direction near ±1).
    cos = [m.theta @ THETA / np.linalg.norm(m.theta) / np.linalg.norm(THETA) for m in fit.models]
    assert sorted(np.round(cos, 1).tolist())[0] < -0.9 and max(cos) > 0.9
    # MaxMin reward: the worse of the two group rewards.
    judge = MaxMinJudge(fit.models)
    ys = ["alpha alpha", "delta beta", "gamma"]
    want = np.min([[m.theta @ _phi(y) for y in ys] for m in fit.models], axis=0)
    assert np.allclose(judge.score(["q"] * 3, ys).numpy(), want, atol=1e-5)

    # K = 1: one BT fit on all pairs; compare with Newton's method in numpy on the same penalised loss.
    one = maxmin_em(records, train_linear_bt, groups=1)
    assert set(one.assignment.values()) == {0}
    d, theta = _diffs(records), np.zeros(len(WORDS))
    for _ in range(50):
        s = 1 / (1 + np.exp(-(d @ theta)))
        grad = -d.T @ (1 - s) + 2 * L2 * theta
        hess = d.T @ (d * (s * (1 - s))[:, None]) + 2 * L2 * np.eye(len(WORDS))
        theta -= np.linalg.solve(hess, grad)
    assert np.allclose(one.models[0].theta, theta, atol=1e-5)
    with pytest.raises(ValueError, match="annotator"):
        maxmin_em([pair("q", "a", "b")], train_linear_bt)


# ----------------------------------------------------------------------------------------- fine-grained
def test_segments_labels_and_dense_rewards_against_numpy():
    text = "It is hot. It rains! Done"
    assert segment_text(text) == [(0, 10), (10, 20), (20, 25)]
    assert segment_text(text, "response") == [(0, 25)]
    spans = [{"start": 3, "end": 5, "label": "fact"}, {"start": 21, "end": 25, "label": "rel"}]
    assert np.array_equal(
        segment_labels(spans, segment_text(text), ["fact", "rel"]), [[0, 1], [1, 1], [1, 0]]
    )
    values, w = np.array([[1.0, -1.0], [0.5, 2.0]]), [0.3, 0.7]
    want = np.zeros(6)
    want[2], want[5] = 0.3 * 1.0 - 0.7 * 1.0, 0.3 * 0.5 + 0.7 * 2.0
    assert np.allclose(dense_token_rewards([2, 5], values, w, 6), want)


def test_fine_grained_one_aspect_one_segment_is_a_sparse_sequence_reward():
    rule = RuleJudge(lambda p, c: 0.25 * len(c.split()) - 1.0)
    judge = FineGrainedRewardJudge(rule, {"quality": 2.0}, value="logit", segmentation="response")
    y = "good help can word. short unsafe"
    dense = judge.dense_rewards("q", y, TOK)
    n_tokens = len(TOK(y, add_special_tokens=False)["input_ids"])
    want = np.zeros(n_tokens)
    want[-1] = 2.0 * (0.25 * 6 - 1.0)  # w · r(x, y) at the last token only
    assert np.allclose(dense, want)
    assert float(judge.score(["q"], [y])[0]) == pytest.approx(want.sum())
    # Two aspects over sentences: totals = Σ_j Σ_k w_k · sign(logit_k(prefix_j)).
    multi = RuleJudge(
        lambda p, c: {"fact": 1.0 if "unsafe" not in c else -1.0, "rel": len(c) - 20.0},
        attributes=["fact", "rel"],
    )
    judge2 = FineGrainedRewardJudge(multi, {"fact": 1.0, "rel": 0.5})
    prefixes = ["good help can word.", "good help can word. short unsafe"]
    signs = np.array(
        [[1.0, -1.0], [-1.0, 1.0]]
    )  # fact: no 'unsafe' then 'unsafe'; rel: 19 − 20 < 0, 32 − 20 > 0
    assert [y[:e] for _, e in segment_text(y)] == prefixes
    assert float(judge2.score(["q"], [y])[0]) == pytest.approx(float((signs @ np.array([1.0, 0.5])).sum()))
    with pytest.raises(ValueError, match="value must be one of"):
        FineGrainedRewardJudge(rule, {"a": 1.0}, value="raw")


# --------------------------------------------------------------------------------------------- self-ref
def _hand_logp(context: str, continuation: str) -> float:
    p = TOK(context, add_special_tokens=True)["input_ids"]
    c = TOK(continuation, add_special_tokens=False)["input_ids"] + [TOK.eos_token_id]
    with torch.no_grad():
        logp = LM(torch.tensor([p + c])).logits[0].double().log_softmax(-1)
    return sum(float(logp[len(p) - 1 + t, tok]) for t, tok in enumerate(c))


def test_selfref_verdict_is_order_invariant_and_matches_hand_log_probs():
    prompts = ["add two and two", "say hi", "name a color"]
    a, b = ["four", "hello there", "blue"], ["five five", "go away", "blue"]
    owns = {"add two and two": "four", "say hi": "hi", "name a color": "red"}
    judge = SelfReferenceJudge(LM, TOK, own_answer=owns)
    ab, ba = judge.judge(prompts, a, b), judge.judge(prompts, b, a)
    assert torch.equal(ab.label, -ba.label) and torch.equal(ab.margin, -ba.margin)
    assert torch.equal(ab.strength, ba.strength)
    assert float(ab.margin[2]) == 0.0 and int(ab.label[2]) == 0  # a response against itself: no preference
    for i in range(2):

        def odds(first, second, i=i):
            text = SELFREF_TEMPLATE.format(
                prompt=prompts[i], own=owns[prompts[i]], a=first, b=second, principle=judge.principle
            )
            return _hand_logp(text, "A") - _hand_logp(text, "B")

        fwd, bwd = odds(a[i], b[i]), odds(b[i], a[i])
        assert float(ab.margin[i]) == pytest.approx(0.5 * (fwd - bwd), abs=1e-4)
        want = np.sign(fwd) if np.sign(fwd) == -np.sign(bwd) else 0.0
        assert int(ab.label[i]) == want
        assert float(ab.strength[i]) == pytest.approx(abs(0.5 * (fwd - bwd)) if want else 0.0, abs=1e-4)
    p = judge.prefer_many(prompts, a, b) + judge.prefer_many(prompts, b, a)
    assert torch.allclose(p, torch.ones(3), atol=1e-6)
    generated = SelfReferenceJudge(LM, TOK, own_answer="generate", max_new_tokens=4)
    g1, g2 = generated.judge(prompts[:2], a[:2], b[:2]), generated.judge(prompts[:2], b[:2], a[:2])
    assert torch.equal(g1.label, -g2.label) and torch.equal(g1.margin, -g2.margin)


class StubVerdicts(SelfReferenceJudge):
    """Verdict log-odds from the text: +2 for label A when response A says 'four', else −1 (a position bias)."""

    def _label_logps(self, texts):
        odds = torch.tensor([2.0 if "[RESPONSE A] four" in t else -1.0 for t in texts])
        return odds, torch.zeros_like(odds)


def test_selfref_votes_on_known_verdicts():
    judge = StubVerdicts(None, None)
    out = judge.judge(["q", "q"], ["four", "six"], ["five", "seven"])
    # Pair 1: a first → +2 (a); b first → −1 (label B = a): both orders pick a, margin ½(2 − (−1)) = 1.5.
    # Pair 2: a first → −1 (b); b first → −1 (b first says B = a): orders disagree → tie, strength 0.
    assert out.label.tolist() == [1.0, 0.0] and out.margin.tolist() == [1.5, 0.0]
    assert out.strength.tolist() == [1.5, 0.0]
    swapped = judge.judge(["q", "q"], ["five", "seven"], ["four", "six"])
    assert swapped.label.tolist() == [-1.0, 0.0] and swapped.margin.tolist() == [-1.5, 0.0]


# ---------------------------------------------------------------------------------------------- seq2seq
class BigramLM(torch.nn.Module):
    """Next-token logits depend only on the current token; its argmax successor f(v) is never EOS."""

    def __init__(self, vocab: int, eos: int):
        super().__init__()
        self.vocab, self.eos = vocab, eos
        table = torch.full((vocab, vocab), -5.0)
        for v in range(vocab):
            table[v, self.successor(v)] = 5.0
        self.table = torch.nn.Parameter(table, requires_grad=False)

    def successor(self, v: int) -> int:
        candidates = [i for i in range(self.vocab) if i != self.eos]
        return candidates[(7 * v + 3) % len(candidates)]

    def forward(self, input_ids):
        return SimpleNamespace(logits=self.table[input_ids])


def test_seq2seq_token_rewards_positive_on_the_rms_own_correction():
    lm = BigramLM(len(TOK), TOK.eos_token_id)  # successors are never EOS: corrections run their full length
    for mode in ("teacher_forcing", "correction"):
        judge = Seq2SeqRewardJudge(lm, TOK, mode=mode)
        context = judge.context_ids("fix this", "some text")
        chain, v = [], context[-1]
        for _ in range(6):
            v = lm.successor(v)
            chain.append(v)
        # y equals the RM's greedy correction: every token is kept.
        assert judge.token_rewards_ids(context, chain).tolist() == [1.0] * 6
        edited = list(chain)
        edited[3] = 1 if chain[3] != 1 else 2
        got = judge.token_rewards_ids(context, edited).tolist()
        if mode == "teacher_forcing":  # token 3 is wrong, and token 4 no longer follows its predecessor
            want_4 = 1.0 if lm.successor(edited[3]) == edited[4] else -1.0
            assert got == [1.0, 1.0, 1.0, -1.0, want_4, 1.0]
        else:  # aligned against the correction (= chain): only the edited token differs
            assert got == [1.0, 1.0, 1.0, -1.0, 1.0, 1.0]
    # The real tiny LM: kept iff the hand-computed argmax equals the token.
    judge = Seq2SeqRewardJudge(LM, TOK, keep_reward=0.5, change_reward=-2.0)
    y = "good help can word"
    assert (
        judge.context_ids("rewrite", y)
        == TOK("rewrite", add_special_tokens=True)["input_ids"]
        + TOK("\n[RESPONSE TO IMPROVE] " + y + "\n[IMPROVED RESPONSE]", add_special_tokens=False)["input_ids"]
    )
    ctx = judge.context_ids("rewrite", y)
    resp = TOK(y, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        pred = LM(torch.tensor([ctx + resp])).logits[0].argmax(-1).tolist()
    want = [0.5 if pred[len(ctx) - 1 + t] == tok else -2.0 for t, tok in enumerate(resp)]
    assert judge.token_rewards("rewrite", y).tolist() == want
    assert float(judge.score(["rewrite"], [y])[0]) == pytest.approx(sum(want))
