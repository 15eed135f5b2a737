"""Rule, directional (DPA), PairPM, FLR, SALMON, calibration (CTRL), ArmoRM and preference-strength judges,
each against numpy or a hand log-prob computation (one plain forward pass per text, no engine)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.data.records import Record, pair
from alignlab.data.reward_templates import PAIR_PM_TEMPLATE
from alignlab.judges.armorm import (
    ArmoRMJudge,
    DirectionalJudge,
    GatingNetwork,
    fit_ridge,
    verbosity_penalties,
)
from alignlab.judges.calibration import CalibratedRewardJudge
from alignlab.judges.ensemble import EnsembleJudge, PreferenceStrength
from alignlab.judges.flr import FOLLOW_UP_TEMPLATE, FollowUpLikelihoodJudge
from alignlab.judges.implicit import ImplicitRewardJudge
from alignlab.judges.preference import PairPMJudge
from alignlab.judges.principles import PrincipleRewardJudge, principle_records
from alignlab.judges.rules import RuleJudge, shorter_is_better
from alignlab.models.tiny import tiny_model

LM, TOK = tiny_model("llama", seed=5)


def hand_logp(context: str, continuation: str, eos: bool = True) -> tuple[float, int]:
    """(summed log-prob, token count) of ``continuation`` after ``context`` from one plain forward pass."""
    p = TOK(context, add_special_tokens=True)["input_ids"]
    c = TOK(continuation, add_special_tokens=False)["input_ids"] + ([TOK.eos_token_id] if eos else [])
    with torch.no_grad():
        logp = LM(torch.tensor([p + c])).logits[0].double().log_softmax(-1)
    return sum(float(logp[len(p) - 1 + t, tok]) for t, tok in enumerate(c)), len(c)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


# ----------------------------------------------------------------------------------------------- rules
def test_rule_judges_scalar_and_named_attributes():
    judge = RuleJudge(lambda p, c: float(c.count("a")) - 0.5 * len(p))
    got = judge.score(["xy", "z"], ["banana", "cab"]).numpy()
    assert np.allclose(got, [3 - 1.0, 1 - 0.5])
    assert judge.prefer("q", "aaa", "a") == pytest.approx(float(_sigmoid(2.0)))
    multi = RuleJudge(
        lambda p, c: {"polite": float("please" in c), "length": len(c)}, attributes=["length", "polite"]
    )
    got = multi.score(["q", "q"], ["please go", "no"]).numpy()  # columns in the declared order
    assert np.array_equal(got, [[9.0, 1.0], [2.0, 0.0]]) and multi.attribute_names == ["length", "polite"]
    with pytest.raises(ValueError, match="declare their names"):
        RuleJudge(lambda p, c: {"length": len(c)}).score(["q"], ["a"])
    with pytest.raises(ValueError, match="pick a direction or a gate"):
        multi.prefer("q", "a", "b")
    assert RuleJudge(shorter_is_better).prefer("q", "ab", "abcd") == pytest.approx(float(_sigmoid(2.0)))
    with pytest.raises(TypeError, match="needs a function"):
        RuleJudge("not a function")
    with pytest.raises(ValueError, match="must return a number"):
        RuleJudge(lambda p, c: "high").score(["q"], ["a"])
    with pytest.raises(ValueError, match="same names"):
        RuleJudge(lambda p, c: {c: 1.0}, attributes=["a"]).score(["q", "q"], ["a", "b"])
    with pytest.raises(ValueError, match="got 2 prompts but 1 completions"):
        judge.score(["q", "q"], ["a"])


# ------------------------------------------------------------------------------------------------- DPA
def test_directional_scoring_along_a_unit_vector():
    attrs = {"a": [1.0, 2.0], "bb": [3.0, -1.0], "ccc": [-2.0, 0.5]}
    multi = RuleJudge(
        lambda p, c: {"helpful": attrs[c][0], "verbose": attrs[c][1]}, attributes=["helpful", "verbose"]
    )
    r = np.array(list(attrs.values()))
    completions, prompts = list(attrs), ["q"] * 3
    v = np.array([3.0, 4.0]) / 5.0
    got = DirectionalJudge(multi, [3.0, 4.0]).score(prompts, completions).numpy()
    assert np.allclose(got, r @ v)
    assert np.allclose(DirectionalJudge(multi, [2.0, 0.0]).score(prompts, completions).numpy(), r[:, 0])
    # Rotating v by 180° negates every score, so the ordering reverses.
    flipped = DirectionalJudge(multi, [-3.0, -4.0]).score(prompts, completions).numpy()
    assert np.allclose(flipped, -(r @ v)) and np.array_equal(np.argsort(flipped), np.argsort(r @ v)[::-1])
    theta = 2.0
    unit = DirectionalJudge(multi, [math.cos(theta), math.sin(theta)]).score(prompts, completions).numpy()
    assert np.allclose(unit, r @ np.array([math.cos(theta), math.sin(theta)]))
    with pytest.raises(ValueError, match="one entry per attribute"):
        DirectionalJudge(multi, [1.0, 0.0, 0.0]).score(prompts, completions)
    with pytest.raises(ValueError, match="non-zero vector"):
        DirectionalJudge(multi, [0.0, 0.0])


# ---------------------------------------------------------------------------------------------- PairPM
def test_pair_pm_symmetrised_probabilities_against_hand_log_probs():
    judge = PairPMJudge(LM, TOK)
    prompts, a, b = ["add two and two", "say hi"], ["four", "hello there"], ["five five", "go away"]
    ab, ba = judge.prefer_many(prompts, a, b), judge.prefer_many(prompts, b, a)
    assert torch.equal(ab + ba, torch.ones(2))  # exactly, by construction
    assert torch.equal(judge.prefer_many(prompts, a, a), torch.full((2,), 0.5))

    def p_label_a(prompt, first, second, t=1.0):
        text = PAIR_PM_TEMPLATE.format(prompt=prompt, a=first, b=second)
        la, lb = hand_logp(text, "A")[0] / t, hand_logp(text, "B")[0] / t
        return math.exp(la) / (math.exp(la) + math.exp(lb))

    t = 0.05
    cold = PairPMJudge(LM, TOK, temperature=t)
    cold_ab, cold_ba = cold.prefer_many(prompts, a, b), cold.prefer_many(prompts, b, a)
    assert torch.equal(cold_ab + cold_ba, torch.ones(2))
    for i in range(2):
        for temp, got in ((1.0, ab), (t, cold_ab)):
            forward = p_label_a(prompts[i], a[i], b[i], temp)  # P(A | A = a, B = b)
            backward_b = 1.0 - p_label_a(prompts[i], b[i], a[i], temp)  # P(B | A = b, B = a)
            assert float(got[i]) == pytest.approx(0.5 * (forward + backward_b), abs=1e-5)


# ------------------------------------------------------------------------------------------ FLR, SALMON
def test_flr_against_hand_follow_up_log_probs():
    positive, negative = ["Thank you!", "Great answer."], ["That is wrong."]
    prompts, completions = ["add two and three", [{"role": "user", "content": "say hi"}]], ["five", "hello"]
    contexts = ["add two and three", "user: say hi"]  # chat prompts are rendered as 'role: content' lines
    for aggregate in ("sum", "mean"):
        judge = FollowUpLikelihoodJudge(LM, TOK, positive, negative, aggregate=aggregate)
        got = judge.score(prompts, completions).numpy()
        for i in range(2):
            text = FOLLOW_UP_TEMPLATE.format(context=contexts[i], response=completions[i])

            def value(f, text=text, aggregate=aggregate):
                total, n = hand_logp(text, " " + f, eos=False)
                return total if aggregate == "sum" else total / n

            want = np.mean([value(f) for f in positive]) - np.mean([value(f) for f in negative])
            assert got[i] == pytest.approx(want, abs=1e-4), aggregate
    same = FollowUpLikelihoodJudge(LM, TOK, positive, positive).score(prompts, completions)
    assert torch.allclose(same, torch.zeros(2), atol=1e-5)
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        FollowUpLikelihoodJudge(LM, TOK, positive, [])


def test_salmon_scores_under_the_principles_given_at_call_time():
    principles = ["Be honest.", "Be brief."]
    # The principle-following RM here is the LM's log-likelihood of the response (any scalar judge works).
    judge = PrincipleRewardJudge(ImplicitRewardJudge(LM, TOK, variant="sum"), principles)
    prompts, completions = ["say hello", "count to two"], ["hello", "one two"]
    got = judge.score(prompts, completions).numpy()
    for i in range(2):
        text = f"Judge the response by these principles:\n1. Be honest.\n2. Be brief.\n\n{prompts[i]}"
        assert got[i] == pytest.approx(hand_logp(text, completions[i])[0], abs=1e-4)
    edited = PrincipleRewardJudge(judge.reward_model, ["Be verbose."]).score(prompts, completions).numpy()
    text = "Judge the response by these principles:\n1. Be verbose.\n\nsay hello"
    assert edited[0] == pytest.approx(hand_logp(text, "hello")[0], abs=1e-4)
    assert not np.allclose(edited, got)
    records = principle_records([pair("say hello", "hello", "bye")], principles)
    assert records[0].prompt.startswith(
        "Judge the response by these principles:\n1. Be honest.\n2. Be brief."
    )
    assert records[0].completions == ["hello", "bye"] and records[0].ranking == [0, 1]
    with pytest.raises(ValueError, match="at least one principle"):
        PrincipleRewardJudge(judge.reward_model, [])


# ------------------------------------------------------------------------------------------ calibration
def test_ctrl_calibrated_reward_is_the_empirical_cdf():
    base = RuleJudge(lambda p, c: float(len(c)))
    refs = {"q": ["a", "bbb", "ccccc", "dd"], "r": ["xx"]}
    completions = ["bbb", "z", "yyyyyy", "xx"]
    prompts = ["q", "q", "q", "r"]
    c = np.array([3 / 4, 1 / 4, 4 / 4, 1 / 1])  # refs with length ≤ the completion's (ties count)
    got = CalibratedRewardJudge(base, refs).score(prompts, completions).numpy()
    assert np.allclose(got, c)
    t = 2.0
    assert np.allclose(CalibratedRewardJudge(base, refs, "exp", t).score(prompts, completions), np.exp(t * c))
    neg = CalibratedRewardJudge(base, refs, "neg_exp", t).score(prompts, completions).numpy()
    assert np.allclose(neg, -np.exp(-t * c))
    # Rank-based: an increasing transform of the base reward changes nothing; callable references work.
    cubed = RuleJudge(lambda p, c: float(len(c)) ** 3 + 7.0)
    assert np.allclose(CalibratedRewardJudge(cubed, lambda p: refs[p]).score(prompts, completions), c)
    with pytest.raises(ValueError, match="no reference samples"):
        CalibratedRewardJudge(base, refs).score(["unknown"], ["a"])
    with pytest.raises(ValueError, match="transform must be one of"):
        CalibratedRewardJudge(base, refs, "log")


# ---------------------------------------------------------------------------------------------- ArmoRM
class TableEmbedder:
    """e(x, y) looked up from a fixed table: stands in for a frozen backbone."""

    def __init__(self, table):
        self.table = table

    def embed(self, prompts, completions):
        return torch.tensor(
            [self.table[(str(p), c)] for p, c in zip(prompts, completions)], dtype=torch.float32
        )


def _numpy_gate(net: GatingNetwork, e: np.ndarray) -> np.ndarray:
    linears = [m for m in net.mlp if isinstance(m, torch.nn.Linear)]
    h = e
    for i, layer in enumerate(linears):
        h = h @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
        if i < len(linears) - 1:
            h = np.maximum(h, 0.0)
    z = h / net.temperature
    z = np.exp(z - z.max(-1, keepdims=True))
    return float(net.scale.detach()) * z / z.sum(-1, keepdims=True)


def test_armorm_gating_mix_against_numpy():
    rng = np.random.default_rng(0)
    h, k = 4, 3
    prompts, completions = ["p1", "p2", "p1"], ["a", "b", "c"]
    table = {(p, c): rng.normal(size=h).tolist() for p, c in zip(prompts, completions)}
    table.update({(p, "\n"): rng.normal(size=h).tolist() for p in ("p1", "p2")})  # prompt embeddings e(x)
    w = rng.normal(size=(k, h))
    transform = np.eye(k)
    transform[0, 2] = -0.4  # r'_0 = r_0 − 0.4·r_verbosity (verbosity = objective 2)
    torch.manual_seed(0)
    gate = GatingNetwork(h, k, hidden=8, layers=2, temperature=2.0)
    with torch.no_grad():
        gate.scale.fill_(1.7)
    judge = ArmoRMJudge(
        TableEmbedder(table),
        torch.tensor(w, dtype=torch.float32),
        torch.tensor(transform, dtype=torch.float32),
        gate,
    )
    e = np.array([table[(p, c)] for p, c in zip(prompts, completions)])
    r_debiased = e @ w.T @ transform.T
    assert np.allclose(judge.attributes(prompts, completions).numpy(), r_debiased, atol=1e-5)
    g = _numpy_gate(gate, np.array([table[(p, "\n")] for p in prompts]))
    assert np.allclose(g.sum(-1), 1.7) and (g >= 0).all()
    assert np.allclose(judge.score(prompts, completions).numpy(), (g * r_debiased).sum(-1), atol=1e-5)
    # A gate that is one-hot on objective j returns s·r'_j.
    with torch.no_grad():
        last = gate.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 1e4, 0.0]))
    assert np.allclose(judge.score(prompts, completions).numpy(), 1.7 * r_debiased[:, 1], atol=1e-5)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rank = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731  (no ties in continuous data)
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def test_armorm_ridge_and_verbosity_penalty_against_numpy():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(40, 5))
    s = e @ rng.normal(size=(5, 2)) + 0.1 * rng.normal(size=(40, 2))
    s[::4, 1] = np.nan  # missing ratings are left out of that objective's regression
    w, alphas = fit_ridge(torch.tensor(e, dtype=torch.float32), torch.tensor(s, dtype=torch.float32), [0.5])
    assert alphas == [0.5, 0.5]
    for j in range(2):
        keep = ~np.isnan(s[:, j])
        want = np.linalg.solve(e[keep].T @ e[keep] + 0.5 * np.eye(5), e[keep].T @ s[keep, j])
        assert np.allclose(w[j].numpy(), want, atol=1e-4)
    verbosity = rng.normal(size=60)
    rewards = np.stack([verbosity + 0.3 * rng.normal(size=60), rng.normal(size=60), verbosity], 1)
    grid = [i / 10 for i in range(0, 21)]
    transform = verbosity_penalties(torch.tensor(rewards, dtype=torch.float32), 2, grid=grid).numpy()
    for j in (0, 1):
        lam = next(g for g in grid if _spearman(rewards[:, j] - g * verbosity, verbosity) <= 0.028)
        assert transform[j, 2] == pytest.approx(-lam)
        assert transform[j, j] == 1.0
    assert transform[0, 2] < 0 and transform[2, 2] == 1.0


# ------------------------------------------------------------------------------- preference strength
def test_preference_strength_reads_the_ranking_not_the_listing_order():
    members = [RuleJudge(lambda p, c: float(len(c))), RuleJudge(lambda p, c: float(c.count("a")) * 3.0)]
    records = [
        pair("x", "aaa", "b"),  # chosen first
        Record("x", ["bb", "abab"], ranking=[1, 0]),  # chosen ("abab") listed second
    ]
    diffs = np.array([[3 - 1, 4 - 2], [9 - 0, 6 - 0]], float)  # member × pair: r(chosen) − r(rejected)
    ensemble = EnsembleJudge(members)
    mean, std = PreferenceStrength(ensemble).strength(records)
    assert np.allclose(mean.numpy(), diffs.mean(0)) and np.allclose(std.numpy(), diffs.std(0))
    scores = PreferenceStrength(ensemble).score(["x", "x"], ["aaa", "bb"]).numpy()
    assert np.allclose(scores, [(3 + 9) / 2, (2 + 0) / 2])
    for bad in (Record("x", ["a", "b", "c"], ranking=[0, 1, 2]), Record("x", ["a", "b"], ranking=[0, 0])):
        with pytest.raises(ValueError, match="strict ranking"):
            PreferenceStrength(ensemble).strength([bad])
