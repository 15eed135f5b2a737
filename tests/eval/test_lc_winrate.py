"""lc_winrate: the GLM against sklearn's liblinear (the solver AlpacaEval calls), the whole pipeline (CV over C,
refit, prediction at equal length) recomputed here with sklearn fits, and METHODS.md's planted length bias."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.eval.glm import C_GRID, fit_l1_logistic
from alignlab.eval.lc_winrate import length_features
from alignlab.eval.registry import run_metric


def _world(n=120, seed=0, theta=0.0, phi=-2.0, difficulty=False):
    """Outputs whose lengths differ; p = σ(θ + φ·tanh(std_delta_len) [+ 0.7·difficulty])."""
    rng = np.random.default_rng(seed)
    base_len = rng.integers(50, 400, n)
    model_len = base_len + rng.integers(-60, 250, n)  # the model is longer on average
    model = ["m" * int(k) for k in model_len]
    base = ["b" * int(k) for k in base_len]
    delta = (base_len - model_len).astype(float)
    sdl = delta / delta.std(ddof=1)
    d = rng.normal(0, 1, n)
    logit = theta + phi * np.tanh(sdl) + (0.7 * d if difficulty else 0)
    return model, base, 1 / (1 + np.exp(-logit)), d


def _sklearn_fit(x, p, w, c):
    linear_model = pytest.importorskip("sklearn.linear_model")
    xd = np.vstack([x, x])
    y = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    sw = np.concatenate([p * w, (1 - p) * w])
    lr = linear_model.LogisticRegression(
        C=c, l1_ratio=1.0, solver="liblinear", fit_intercept=False, tol=1e-10, max_iter=100_000
    )
    lr.fit(xd, y, sample_weight=sw)
    return lr.coef_[0]


@pytest.mark.parametrize("c", [0.05, 1.0, 100.0])
def test_glm_matches_liblinear_on_duplicated_rows(c):
    model, base, p, d = _world(difficulty=True, theta=0.4)
    x = np.stack([np.ones(len(p)), np.tanh(length_features(model, base)), d], axis=1)
    w = np.where(np.arange(len(p)) % 3 == 0, 0.1, 1.0)  # some rows down-weighted like gamed baselines
    ours = fit_l1_logistic(x, p, w, c)
    assert ours == pytest.approx(_sklearn_fit(x, p, w, c), abs=2e-4)


def test_pipeline_matches_a_sklearn_recomputation():
    model, base, p, d = _world(n=80, seed=3, theta=0.5, difficulty=True)
    result = run_metric(
        "lc_winrate", verdicts=p, model_outputs=model, baseline_outputs=base, difficulty=d, rounds=20
    )
    x = np.stack([np.ones(len(p)), np.tanh(length_features(model, base)), d], axis=1)
    w = np.ones(len(p))
    fold = (len(p) - 1 - np.arange(len(p))) % 5
    losses = []
    for c in C_GRID:
        scores = []
        for f in range(5):
            tr, te = fold != f, fold == f
            beta = _sklearn_fit(x[tr], p[tr], w[tr], c)
            q = np.clip(1 / (1 + np.exp(-x[te] @ beta)), 1e-15, 1 - 1e-15)
            scores.append(-np.mean(p[te] * np.log(q) + (1 - p[te]) * np.log(1 - q)))
        losses.append(np.mean(scores))
    best = C_GRID[int(np.argmin(losses))]
    assert result.details["C"] == pytest.approx(best)
    beta = _sklearn_fit(x, p, w, best)
    expected = 100 * np.mean(1 / (1 + np.exp(-(beta[0] + beta[2] * d))))
    assert result["lc_win_rate"].value == pytest.approx(expected, abs=0.05)
    assert result["win_rate"].value == pytest.approx(100 * p.mean())


def test_planted_length_bias_is_removed():
    # METHODS.md "lc_winrate": p depends only on the length difference (p = σ(2·tanh(Δ)) for the longer model)
    model, base, p, _ = _world(n=200, seed=1, theta=0.0, phi=-2.0)
    result = run_metric("lc_winrate", verdicts=p, model_outputs=model, baseline_outputs=base, rounds=50)
    assert result["win_rate"].value > 65  # the raw win rate rewards the longer outputs
    lc = result["lc_win_rate"]
    assert abs(lc.value - 50) < 1.0
    lo, hi = lc.interval
    assert lo <= 50 <= hi
    curve = result.details["length_curve"]
    assert curve["win_rate"][-1] > curve["win_rate"][0]  # raw rate rises with the length difference


def test_a_better_model_keeps_its_lead_at_equal_length():
    model, base, p, _ = _world(n=200, seed=2, theta=1.0, phi=-2.0)
    result = run_metric("lc_winrate", verdicts=p, model_outputs=model, baseline_outputs=base, rounds=50)
    # at equal length the GLM predicts σ(θ) = σ(1) = 73.1%
    assert result["lc_win_rate"].value == pytest.approx(100 / (1 + np.exp(-1.0)), abs=1.5)


def test_simulated_annotators_length_bias_is_removed():
    """alignlab.sim: both systems give the world's right, polite answer and differ only in filler words; the
    annotators weigh nothing but a length bias. Raw win rate rewards the longer system, LC is ≈ 50. A system
    that is also right more often keeps its lead at equal length."""
    import random

    from alignlab.judges.simulated import AnnotatorGroup, AnnotatorSettings, SimulatedAnnotators
    from alignlab.sim import tasks as T
    from alignlab.sim.worlds import TextWorld

    world = TextWorld()
    tasks = world.tasks("heldout")[:200]
    rng = random.Random(0)
    weights = dict(world.config.gold.as_vector(), verbosity=0.0)
    judge = SimulatedAnnotators(
        world, AnnotatorSettings(length_bias=0.4, groups=[AnnotatorGroup(weights=weights)])
    )
    prompts = [t.prompt for t in tasks]
    model = [T.render(T.POLITE_STYLE, t.answer, rng.randint(0, 8), rng) for t in tasks]
    base = [T.render(T.POLITE_STYLE, t.answer, rng.randint(0, 3), rng) for t in tasks]
    p = judge.prefer_many(prompts, model, base).numpy()
    result = run_metric("lc_winrate", verdicts=p, model_outputs=model, baseline_outputs=base, rounds=100)
    assert result["win_rate"].value > 60
    assert abs(result["lc_win_rate"].value - 50) < 3
    # The baseline now answers wrongly half the time: at equal length the model still wins clearly.
    base = [
        T.render(T.POLITE_STYLE, t.answer if i % 2 else t.wrong, rng.randint(0, 3), rng)
        for i, t in enumerate(tasks)
    ]
    p = judge.prefer_many(prompts, model, base).numpy()
    better = run_metric("lc_winrate", verdicts=p, model_outputs=model, baseline_outputs=base, rounds=100)
    assert better["lc_win_rate"].interval[0] > 55  # half the prompts at σ(w_correct) = 0.73, half at ½


def test_baseline_against_itself_is_fifty():
    outputs = [f"answer {'x' * i}" for i in range(12)]
    result = run_metric("lc_winrate", verdicts=[0.5] * 12, model_outputs=outputs, baseline_outputs=outputs)
    assert result["lc_win_rate"].value == 50.0


def test_pipeline_matches_sklearn_logistic_regression_cv_as_alpaca_eval_calls_it():
    """fit_LogisticRegressionCV of alpaca_eval (glm_winrate.py): rows duplicated with labels 1/0 and weights p/(1 − p),
    GroupKFold(5) over the original rows, the logloss_continuous scorer routed its true_prob, L1, liblinear, no
    intercept, random_state 123. Hard 0/1 verdicts on 60 prompts, so that C is chosen inside the grid."""
    import warnings

    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    model, base, p_true, d = _world(n=60, seed=4, theta=0.3, difficulty=True)
    p = (np.random.default_rng(9).random(60) < p_true).astype(float)
    ours = run_metric(
        "lc_winrate", verdicts=p, model_outputs=model, baseline_outputs=base, difficulty=d, rounds=5
    )

    def logloss_continuous(y_true, y_pred, true_prob, true_sample_weight=None):
        y = np.where(y_true == 1, true_prob, 1 - true_prob)
        q = np.clip(y_pred, 1e-15, 1 - 1e-15)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))

    x = np.stack([np.ones(60), np.tanh(length_features(model, base)), d], axis=1)
    xd, yd = np.vstack([x, x]), np.concatenate([np.ones(60), np.zeros(60)])
    true_prob, groups = np.concatenate([p, 1 - p]), np.concatenate([np.arange(60), np.arange(60)])
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorer = make_scorer(logloss_continuous, response_method="predict_proba", greater_is_better=False)
        scorer = scorer.set_score_request(true_sample_weight=True, true_prob=True)
        ref = LogisticRegressionCV(cv=GroupKFold(n_splits=5), scoring=scorer, random_state=123, dual=False,
                                   penalty="l1", solver="liblinear", fit_intercept=False, tol=1e-10)  # fmt: skip
        ref.set_fit_request(sample_weight=True)
        ref.fit(xd, yd, sample_weight=true_prob, groups=groups, true_sample_weight=None, true_prob=true_prob)
    assert 1e-4 < ref.C_[0] < 1e4  # inside the grid
    assert ours.details["C"] == pytest.approx(ref.C_[0])
    beta = ref.coef_[0]
    assert list(ours.details["weights"].values()) == pytest.approx(beta, abs=1e-3)
    expected = 100 * np.mean(1 / (1 + np.exp(-(beta[0] + beta[2] * d))))
    assert ours["lc_win_rate"].value == pytest.approx(expected, abs=0.05)
