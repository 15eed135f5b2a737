"""BCO's UDM: the logistic-regression fit against Newton's method in numpy, p = 1/2 when both classes share
their prompts, and the density-ratio weights reaching the loss in a real run."""

import json
import math

import numpy as np
import pytest
import torch

from alignlab.config import load_config
from alignlab.data.records import Record
from alignlab.models.embedding import embed_texts
from alignlab.objectives.udm import add_prob_desirable, fit_logistic_regression, fit_udm
from alignlab.train.trainer import Trainer


def newton_logistic_regression(x, y01, c=1.0, steps=50):
    """Balanced-class-weight, L2 (intercept unpenalised) logistic regression by Newton's method."""
    n, d = x.shape
    s = np.where(y01 > 0, n / (2 * y01.sum()), n / (2 * (n - y01.sum())))
    xa = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.diag([1.0] * d + [0.0])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xa @ theta))
        grad = penalty @ theta + c * xa.T @ (s * (p - y01))
        hess = penalty + c * (xa * (s * p * (1 - p))[:, None]).T @ xa
        theta -= np.linalg.solve(hess, grad)
    return theta[:d], theta[d]


def test_fit_matches_newtons_method_on_unbalanced_overlapping_classes():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0.5, 1.0, (30, 3)), rng.normal(-0.3, 1.0, (90, 3))])
    y = np.array([1.0] * 30 + [0.0] * 90)
    w_ref, b_ref = newton_logistic_regression(x, y)
    w, b = fit_logistic_regression(torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(w.numpy(), w_ref, atol=1e-6)
    assert float(b) == pytest.approx(b_ref, abs=1e-6)


def test_fit_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic_regression(torch.zeros(3, 2), torch.ones(3))


def test_same_prompts_in_both_classes_give_probability_one_half():
    # Every prompt has one desirable and one undesirable completion: the classes are indistinguishable,
    # so the balanced fit is w = 0, b = 0 and p(x) = 1/2 (METHODS.md: p ≈ 0.5 ⇒ w ≈ 1).
    records = [
        Record(prompt=f"question {i} about topic {i % 3}", completions=["a", "b"], labels=[True, False])
        for i in range(6)
    ]
    add_prob_desirable(records, embed_texts, "tiny:llama", fit_udm(records, embed_texts, "tiny:llama"))
    assert [r.extras["prob_desirable"] for r in records] == pytest.approx([0.5] * 6, abs=1e-6)


def test_density_ratio_weights_reach_the_bco_loss_in_a_run(tmp_path):
    rows = [{"prompt": f"Tell me about cats and kittens {i}", "completions": ["Cats purr."], "labels": [True]}
            for i in range(4)]  # fmt: skip
    rows += [{"prompt": f"Explain the tax code section {i}", "completions": ["Taxes are due."], "labels": [False]}
             for i in range(4)]  # fmt: skip
    data = tmp_path / "unpaired.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trainer = Trainer(
        load_config(None, [f"out={tmp_path / 'bco'}", "train.progress=false", f"data.train={data}",
                           "objectives.0.name=bco", "objectives.0.udm_encoder=tiny:llama", "train.steps=1",
                           "train.batch_size=8", f"reference.cache_dir={tmp_path / 'cache'}"])
    )  # fmt: skip
    result = trainer.run()
    probs = [r.extras["prob_desirable"] for r in trainer.train_data.records]
    assert min(probs[:4]) > 0.5 > max(probs[4:])  # the classifier tells the two prompt sets apart
    ratio = [min(10.0, max(0.5, p / (1 - p))) for p in probs[4:]]  # undesirable rows' clipped p/(1-p)
    assert any(abs(r - 1) > 0.05 for r in ratio)  # the weights differ from BCO without UDM
    # At step 1 the policy is the reference: ρ = 0, δ = 0, so each row's loss is log 2 times its weight.
    first = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first["loss"] == pytest.approx(math.log(2) * (4 + sum(ratio)) / 8, rel=1e-5)


def test_eval_records_are_weighted_by_the_classifier_fitted_on_training_data(tmp_path):
    # Training: cat prompts desirable, tax prompts undesirable. Eval: the reverse. A classifier fitted on the
    # eval labels would put eval cat prompts below 1/2; the one fitted on training data puts them above.
    def rows(cat_label):
        cats = [{"prompt": f"Tell me about cats and kittens {i}", "completions": ["ok"], "labels": [cat_label]}
                for i in range(4)]  # fmt: skip
        taxes = [{"prompt": f"Explain the tax code section {i}", "completions": ["ok"], "labels": [not cat_label]}
                 for i in range(4)]  # fmt: skip
        return "".join(json.dumps(r) + "\n" for r in cats + taxes)

    (tmp_path / "train.jsonl").write_text(rows(True))
    (tmp_path / "eval.jsonl").write_text(rows(False))
    trainer = Trainer(
        load_config(None, [f"out={tmp_path / 'bco'}", "train.progress=false", f"data.train={tmp_path / 'train.jsonl'}",
                           f"data.eval={tmp_path / 'eval.jsonl'}", "objectives.0.name=bco",
                           "objectives.0.udm_encoder=tiny:llama", "train.steps=1", "train.batch_size=8",
                           f"reference.cache_dir={tmp_path / 'cache'}"])
    )  # fmt: skip
    trainer.run()
    eval_probs = [r.extras["prob_desirable"] for r in trainer.eval_data.records]
    assert min(eval_probs[:4]) > 0.5 > max(eval_probs[4:])  # cats still look desirable: the train fit
