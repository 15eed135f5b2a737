"""BLEUBERI's BLEU reward (hand values, sacreBLEU's 13a tokeniser and unsmoothed BLEU) and the conservative
ensemble of Coste et al. (hand values)."""

from __future__ import annotations

import math

import pytest
import torch

from alignlab.judges.base import Judge
from alignlab.judges.bleuberi import BleuberiJudge, nmt_bleu, select_hard_prompts, tokenize_13a
from alignlab.judges.conservative_ensemble import ConservativeEnsembleJudge, conservative_reward
from alignlab.judges.registry import get_judge


def test_bleuberi_is_registered():
    assert get_judge("bleuberi").cls is BleuberiJudge
    assert get_judge("rm_ensemble_conservative").cls is ConservativeEnsembleJudge


def test_nmt_bleu_by_hand():
    ref = "the cat sat on the mat"
    assert nmt_bleu(ref, [ref]) == 1.0
    # hyp 'the cat sat on a mat' (6 tokens): matches 5/6, 3/5, 2/4, 1/3; smoothed (m+1)/(t+1)
    hyp = "the cat sat on a mat"
    smoothed = (6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25
    assert nmt_bleu(hyp, [ref]) == pytest.approx(smoothed, rel=1e-12)
    assert nmt_bleu(hyp, [ref], smooth=False) == pytest.approx(
        (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-12
    )
    # brevity penalty with the SHORTEST reference (not the closest): |y| = 3, refs of 4 and 6 tokens
    short = "the cat sat"
    p = (4 / 4 * 3 / 3 * 2 / 2 * 1 / 1) ** 0.25
    assert nmt_bleu(short, ["the cat sat down", ref]) == pytest.approx(p * math.exp(1 - 4 / 3), rel=1e-12)
    assert nmt_bleu("", [ref]) == 0.0
    # 13a splits punctuation, so "mat." matches "mat ."
    assert nmt_bleu("the cat sat on the mat.", ["the cat sat on the mat ."]) == 1.0


def test_exact_reference_gets_the_top_reward_in_a_group():
    judge = BleuberiJudge({"q": ["the answer is four", "it is 4"]})
    scores = judge.score(["q"] * 3, ["it is 4", "the answer is five", "no idea"])
    assert scores[0] == 1.0 and scores.argmax() == 0
    assert torch.equal(scores, judge.score(["q"] * 3, ["it is 4", "the answer is five", "no idea"]))


def test_select_hard_prompts_takes_the_lowest_scores():
    assert select_hard_prompts(["a", "b", "c", "d"], [0.5, 0.1, 0.9, 0.1], 3) == [1, 3, 0]


def test_against_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    texts = [
        "Hello, world! It's 3.14 -- or 3,000-ish; see e.g. <a href='x'>this</a> & that.",
        "Prices: $5.00, 10-20 items (approx.) &amp; more\nnew-\nline",
        "a.b,c 1.2 x.5 5.x {braces} [brackets] `tick` ~tilde~",
    ]
    ref_tok = Tokenizer13a()
    for t in texts:
        assert tokenize_13a(t) == ref_tok(t).split()
    # without smoothing and with one reference, NMT BLEU equals sacreBLEU's sentence BLEU (same 13a tokens,
    # closest = shortest reference, no zero precision)
    hyp, ref = (
        "The quick brown fox jumps over the lazy dog .",
        "The quick brown fox jumped over the lazy dog .",
    )
    expected = sacrebleu.sentence_bleu(hyp, [ref], smooth_method="none", tokenize="13a").score / 100
    assert nmt_bleu(hyp, [ref], smooth=False) == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------- conservative ensemble
def test_conservative_objectives_by_hand():
    r = torch.tensor([[1.0, 0.0], [3.0, 4.0]], dtype=torch.float64)  # two members, two completions
    assert conservative_reward(r, "mean").tolist() == [2.0, 2.0]
    assert conservative_reward(r, "wco").tolist() == [1.0, 0.0]
    # population variance (1, 3) → 1, (0, 4) → 4; sample variance 2 and 8
    assert conservative_reward(r, "uwo", 1.0, "population").tolist() == [1.0, -2.0]
    assert conservative_reward(r, "uwo", 0.5, "sample").tolist() == [1.0, -2.0]
    same = torch.tensor([[0.3, -1.0, 2.0]] * 4, dtype=torch.float64)
    for objective in ("mean", "wco", "uwo"):
        assert torch.equal(conservative_reward(same, objective), same[0])


class _Affine(Judge):
    def __init__(self, a: float, b: float):
        self.a, self.b = a, b

    def score(self, prompts, completions):
        return torch.tensor([self.a * len(c) + self.b for c in completions], dtype=torch.float64)


def test_members_are_normalised_before_they_are_combined():
    # two members that agree up to an affine map disagree on the raw scale but not after calibration
    judge = ConservativeEnsembleJudge([_Affine(1.0, 0.0), _Affine(10.0, -5.0)], objective="uwo", uwo_coef=1.0)
    texts = ["a", "abc", "abcdef", "ab"]
    prompts = ["p"] * 4
    assert judge.score(prompts, texts).abs().max() > 1  # raw: large variance
    judge.calibrate(prompts, texts)
    lengths = torch.tensor([1.0, 3.0, 6.0, 2.0], dtype=torch.float64)
    z = (lengths - lengths.mean()) / lengths.std()
    torch.testing.assert_close(judge.score(prompts, texts).double(), z, rtol=1e-6, atol=1e-6)
