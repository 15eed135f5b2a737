"""Selection tools on planted cases: each test knows which records should be chosen and measures it."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from alignlab.data.label.symmetric import symmetric_preference
from alignlab.data.records import demonstration, pair
from alignlab.data.select.base import hashed_embeddings, record_text
from alignlab.data.select.ches_filter import ches, ches_filter
from alignlab.data.select.clear import clear_curation
from alignlab.data.select.deita import deita
from alignlab.data.select.got_d import calibrated_gradient, got_d_selection, sinkhorn_potentials
from alignlab.data.select.zip_fit import ncd, zip_fit

rng = random.Random(0)
MATH = ["What is {a} plus {b}? The sum of {a} and {b} is {c}.", "Compute {a} times {b}: the product is {c}."]
COOK = [
    "How long should I boil an egg for a soft yolk? About six minutes in boiling water, then cold water.",
    "What herbs go with roast potatoes? Rosemary, thyme and garlic, with olive oil and salt.",
    "How do I keep rice from sticking? Rinse it first and let it rest covered after cooking.",
]


def _math(i: int) -> str:
    a, b = i % 17 + 2, i % 13 + 3
    return MATH[i % 2].format(a=a, b=b, c=a + b if i % 2 == 0 else a * b)


def _cook(i: int) -> str:
    return COOK[i % 3] + f" Tip number {i}: taste as you go."


def _pool(n: int = 20):
    """n in-domain (arithmetic) and n out-of-domain (cooking) demonstrations, interleaved."""
    records, truth = [], []
    for i in range(n):
        records += [demonstration("Question", _math(i)), demonstration("Question", _cook(i))]
        truth += [True, False]
    return records, truth


# ------------------------------------------------------------------ Deita
def test_deita_identical_samples_only_one_selected():
    a, b = demonstration("p", "the same text"), demonstration("p", "the same text")
    other = demonstration("q", "something else entirely, about birds")
    records = [a, b, other]
    out = deita(records, budget=3, embeddings=hashed_embeddings([record_text(r) for r in records]))
    assert out.indices == [0, 2]
    assert out.dropped == {"too similar to a selected record (cosine > 0.9)": 1}


def test_deita_removes_planted_duplicates_and_keeps_the_best_scored_copy():
    base = [demonstration(f"prompt {i}", f"answer number {i} with some words {i * 7}") for i in range(12)]
    dup_of = [rng.randrange(12) for _ in range(8)]
    records = base + [demonstration(base[j].prompt, base[j].completions[0]) for j in dup_of]
    quality = [1.0] * 12 + [2.0] * 8  # the duplicate copies score higher: Deita must keep those, once
    emb = hashed_embeddings([record_text(r) for r in records])
    out = deita(records, budget=len(records), embeddings=emb, quality=quality)
    texts = [r.completions[0] for r in out.records]
    assert len(texts) == len(set(texts)) == 12  # every duplicate removed, every distinct text kept
    for j in set(dup_of):  # the kept copy of a duplicated text is the higher-scored one
        assert 12 + dup_of.index(j) in out.indices and j not in out.indices


def test_deita_stops_at_the_budget_by_evol_score():
    records = [demonstration(f"p{i}", f"distinct answer {i} " + "x" * i) for i in range(6)]
    complexity, quality = [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1.5]  # c*q = 6 10 12 12 10 9
    out = deita(
        records, 3, hashed_embeddings([str(i) * 50 for i in range(6)]), complexity, quality, threshold=1.01
    )
    assert out.indices == [1, 2, 3]  # scores 10 (first of the 10s), 12, 12
    assert out.scores == [6, 10, 12, 12, 10, 9]


# ------------------------------------------------------------------ ZIP-FIT
def test_ncd_of_a_text_with_itself_is_small_and_of_unrelated_random_bytes_near_one():
    text = " ".join(_math(i) for i in range(20))
    assert ncd(text, text) < 0.1
    r = random.Random(1)
    x = "".join(chr(r.randrange(33, 127)) for _ in range(2000))
    y = "".join(chr(r.randrange(33, 127)) for _ in range(2000))
    assert 0.95 < ncd(x, y) < 1.05


def test_zip_fit_picks_the_in_domain_half():
    records, truth = _pool(20)
    targets = [_math(100 + i) for i in range(8)]
    out = zip_fit(records, targets, budget=20)
    chosen = set(out.indices)
    precision = sum(truth[i] for i in chosen) / len(chosen)
    assert len(chosen) == 20 and precision == 1.0


# ------------------------------------------------------------------ GOT-D
def test_sinkhorn_potentials_match_the_exact_ot_on_two_points():
    # two candidates, two targets, cost [[0, 1], [1, 0]]: at small epsilon the plan is the identity and
    # the dual optimum satisfies f_i + g_j = C_ij on the plan's support (both potentials 0 up to a shift).
    f, g, error = sinkhorn_potentials(np.array([[0.0, 1.0], [1.0, 0.0]]), epsilon=0.01)
    assert abs((f[0] + g[0]) - 0.0) < 0.05 and abs((f[1] + g[1]) - 0.0) < 0.05 and error < 1e-9
    assert np.allclose(calibrated_gradient(np.array([1.0, 2.0, 3.0])), [-1.5, 0.0, 1.5])


def _entropic_ot_value(cost: np.ndarray, a: np.ndarray, b: np.ndarray, eps: float) -> float:
    """min_P <P, C> + eps KL(P || a b^T) over couplings of a and b, by plain (scaling-form) Sinkhorn:
    an implementation written here, independent of got_d.sinkhorn_potentials."""
    kernel = np.exp(-cost / eps)
    v = np.ones(len(b))
    for _ in range(20000):
        u = a / (kernel @ v)
        v = b / (kernel.T @ u)
    plan = u[:, None] * kernel * v[None, :]
    return float((plan * cost).sum() + eps * (plan * np.log(plan / np.outer(a, b))).sum())


def test_got_d_calibrated_gradient_is_the_derivative_of_the_ot_value_along_the_simplex():
    # GOT-D's score is dOT(D_S, D_R)/d(mass of candidate i) with the masses kept a distribution
    # (paper App. B.2 Eq. 7-8; LAVA's calibration). Check it against a central finite difference of the
    # entropic OT value along e_i - sum_{k != i} e_k / (N - 1), the value computed by a separate solver.
    r = np.random.default_rng(3)
    cand, target = r.normal(size=(6, 2)), r.normal(size=(4, 2)) + 0.5
    cost = ((cand[:, None, :] - target[None, :, :]) ** 2).sum(-1)
    eps, n = 0.5, 6
    f, _, error = sinkhorn_potentials(cost, epsilon=eps, tol=1e-13, iterations=20000)
    assert error < 1e-12
    gradient = calibrated_gradient(f)
    a, b, h = np.full(n, 1 / n), np.full(4, 1 / 4), 1e-5
    for i in range(n):
        d = np.full(n, -1 / (n - 1))
        d[i] = 1.0
        slope = (
            _entropic_ot_value(cost, a + h * d, b, eps) - _entropic_ot_value(cost, a - h * d, b, eps)
        ) / (2 * h)
        assert abs(slope - gradient[i]) < 1e-6, (i, slope, gradient[i])


def test_got_d_chooses_what_the_pool_lacks_paper_figure_3():
    # Paper Fig. 3: the pool (standing in for pre-training data) is 90% "cat", 10% "dog"; the target is
    # half and half. Matching the target would pick both kinds evenly; GOT-D's gradient picks the dogs,
    # the part of the target the pool under-supplies. Budget = the number of dogs: all of them, no cat.
    r = np.random.default_rng(0)
    cats = np.array([1.0, 0.0]) + 0.05 * r.normal(size=(45, 2))
    dogs = np.array([0.0, 1.0]) + 0.05 * r.normal(size=(5, 2))
    target = np.vstack([np.array([1.0, 0.0]) + 0.05 * r.normal(size=(10, 2)),
                        np.array([0.0, 1.0]) + 0.05 * r.normal(size=(10, 2))])  # fmt: skip
    pool = [demonstration("q", f"cat {i}") for i in range(45)] + [
        demonstration("q", f"dog {i}") for i in range(5)
    ]
    out = got_d_selection(pool, budget=5, embeddings=np.vstack([cats, dogs]), target_embeddings=target)
    assert out.indices == list(range(45, 50))


def test_got_d_cosine_cost_with_half_epsilon_equals_squared_euclidean_on_unit_vectors():
    # ||e - t||^2 = 2 (1 - cos) for unit vectors, so the potentials scale by 2 and the choice is the same.
    records, _ = _pool(10)
    emb = hashed_embeddings([r.completions[0] for r in records])
    target = hashed_embeddings([_math(300 + i) for i in range(6)])
    sq = got_d_selection(records, 10, emb, target, epsilon=0.1, cost="sqeuclidean")
    cos = got_d_selection(records, 10, emb, target, epsilon=0.05, cost="cosine")
    assert sq.indices == cos.indices
    assert np.allclose(np.array(sq.scores), 2 * np.array(cos.scores), atol=1e-6)


def test_got_d_candidates_identical_to_targets_rank_highest():
    records, _ = _pool(10)
    target_texts = [_math(200 + i) for i in range(4)]
    planted = [demonstration("Question", t) for t in target_texts]
    pool = records + planted
    emb = hashed_embeddings([r.completions[0] for r in pool])
    out = got_d_selection(pool, budget=4, embeddings=emb, target_embeddings=hashed_embeddings(target_texts))
    assert sorted(out.indices) == list(range(len(records), len(pool)))


def test_got_d_picks_the_in_domain_half():
    records, truth = _pool(20)
    emb = hashed_embeddings([r.completions[0] for r in records])
    target = hashed_embeddings([_math(300 + i) for i in range(10)])
    out = got_d_selection(records, budget=20, embeddings=emb, target_embeddings=target)
    precision = sum(truth[i] for i in out.indices) / 20
    assert precision == 1.0


# ------------------------------------------------------------------ CHES
def test_ches_is_zero_for_identical_responses_and_minus_the_norm_for_orthogonal_ones():
    h = np.array([1.0, 2.0, 2.0])
    assert ches(h, h) == 0.0
    assert ches(h, np.array([2.0, -1.0, 0.0])) == -9.0  # <h+, h-> = 0, ||h+||^2 = 9
    assert ches(h, h, 3, 3) == pytest.approx(0.0)


def test_ches_filter_q0_returns_the_input_unchanged():
    records = [pair(f"p{i}", "a", "b") for i in range(5)]
    out = ches_filter(records, [3.0, -1.0, 2.0, 0.0, 9.0], q=0.0)
    assert out.records == records and not out.dropped


def test_ches_filter_flags_the_planted_near_identical_pairs():
    """Pairs whose two responses have nearly the same embedding sum (the pairs CHES warns about) among
    pairs with different responses: the top-q cut finds them (precision and recall measured)."""
    r = np.random.default_rng(0)
    hs, truth = [], []
    for i in range(40):
        h_plus = r.normal(size=16)
        similar = i % 10 == 0  # 4 planted pairs
        h_minus = h_plus + 0.05 * r.normal(size=16) if similar else r.normal(size=16)
        hs.append(ches(h_plus, h_minus))
        truth.append(similar)
    records = [pair(f"p{i}", "a", "b") for i in range(40)]
    out = ches_filter(records, hs, q=0.1)
    flagged = set(range(40)) - set(out.indices)
    tp = sum(truth[i] for i in flagged)
    precision, recall = tp / len(flagged), tp / sum(truth)
    assert (precision, recall) == (1.0, 1.0)


# ------------------------------------------------------------------ CLEAR
def test_clear_all_confident_dataset_passes_unchanged():
    records = [pair(f"p{i}", "a", "b") for i in range(4)]
    out = clear_curation(records, [0.9, 0.8, 1.0, 0.7], threshold=0.5)
    assert out.records == records and not out.dropped


def test_clear_flags_planted_mislabelled_pairs_at_measured_precision_and_recall():
    """A judge whose symmetric preference follows the true gap with noise; 20% of the labels flipped."""
    r = random.Random(3)
    records, flipped, p_ab, p_ba = [], [], [], []
    for i in range(200):
        gap = r.uniform(0.5, 3.0)  # the true utility gap, first completion better
        wrong = r.random() < 0.2
        records.append(pair(f"p{i}", "worse" if wrong else "better", "better" if wrong else "worse"))
        flipped.append(wrong)
        signed = -gap if wrong else gap  # the judge sees the truth through noise and a position bias
        p_ab.append(1 / (1 + math.exp(-(signed + 0.3 + r.gauss(0, 0.5)))))
        p_ba.append(1 / (1 + math.exp(-(-signed + 0.3 + r.gauss(0, 0.5)))))
    confidence = symmetric_preference(p_ab, p_ba)
    out = clear_curation(records, confidence.tolist(), threshold=0.5)
    flagged = set(range(200)) - set(out.indices)
    tp = sum(flipped[i] for i in flagged)
    precision, recall = tp / len(flagged), tp / sum(flipped)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    fixed = clear_curation(records, confidence.tolist(), threshold=0.5, correct=True, correct_threshold=0.8)
    corrected = [i for i, rec in zip(fixed.indices, fixed.records) if rec.meta.get("clear_flipped")]
    assert corrected and all(flipped[i] for i in corrected)  # only truly flipped labels were corrected
