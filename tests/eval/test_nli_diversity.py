"""NLI diversity of ``rlhf_diversity_metrics`` (Kirk et al. 2023; official code facebookresearch/rlfh-gen-div
rlvsil/diversity/similarity_metrics.py NLISimilarity, top_k = 1, weights contradiction +1 / neutral 0 /
entailment −1, both directions summed; metric.py Similarity2DiversityMetric: pairs j < i, diversity = 1 − mean)
on a fixed classifier output by hand, and through a tiny sequence-classification model built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.eval.registry import MetricError, run_metric

# A fixed classifier: probabilities (entailment, neutral, contradiction) per (premise, hypothesis).
TABLE = {
    ("a", "b"): (0.7, 0.2, 0.1), ("b", "a"): (0.1, 0.3, 0.6),
    ("a", "c"): (0.2, 0.5, 0.3), ("c", "a"): (0.1, 0.1, 0.8),
    ("b", "c"): (0.9, 0.05, 0.05), ("c", "b"): (0.4, 0.4, 0.2),
    ("x", "y"): (0.1, 0.1, 0.8), ("y", "x"): (0.1, 0.1, 0.8),
    ("x", "z"): (0.1, 0.8, 0.1), ("z", "x"): (0.6, 0.3, 0.1),
    ("y", "z"): (0.3, 0.3, 0.4), ("z", "y"): (0.2, 0.7, 0.1),
}  # fmt: skip


def fixed(premises, hypotheses):
    return np.array([TABLE[(p, h)] for p, h in zip(premises, hypotheses)])


def test_nli_diversity_by_hand_on_a_fixed_classifier():
    # Set 1 {a, b, c}: a-b: E 0.7 → −0.7, C 0.6 → +0.6 → −0.1; a-c: N 0.5 → 0, C 0.8 → +0.8 → 0.8;
    # b-c: E 0.9 → −0.9, then the tie 0.4/0.4 goes to the first label (entailment) → −0.4 → −1.3.
    set1 = np.mean([-0.1, 0.8, -1.3])
    # Set 2 {x, y, z}: x-y: 0.8 + 0.8 = 1.6; x-z: 0 − 0.6 = −0.6; y-z: 0.4 + 0 = 0.4.
    set2 = np.mean([1.6, -0.6, 0.4])
    res = run_metric("rlhf_diversity_metrics", samples=[["a", "b", "c"], ["x", "y", "z"]], nli=fixed)
    assert res["per_input_nli_score"].value == pytest.approx((set1 + set2) / 2)
    assert res["per_input_nli_score"].se == pytest.approx(np.std([set1, set2], ddof=1) / np.sqrt(2))
    assert res["per_input_nli_from_sim"].value == pytest.approx(1 - (set1 + set2) / 2)


def test_nli_classifier_of_wrong_shape_is_refused():
    with pytest.raises(MetricError, match="expected \\(6, 3\\)"):
        run_metric("rlhf_diversity_metrics", samples=[["a", "b", "c"]], nli=lambda p, h: np.zeros((6, 2)))


def test_a_saved_sequence_classifier_plugs_in_by_path(tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from alignlab.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    labels = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}  # not in (E, N, C) order: names must be read
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, num_labels=3, id2label=labels,
        label2id={v: k for k, v in labels.items()}, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    torch.nn.init.normal_(model.score.weight, std=2.0)  # spread the labels so the top one varies
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    samples = [["the cat sat", "a dog ran far", "birds sing"], ["red", "blue sky", "green grass grows"]]
    res = run_metric(
        "rlhf_diversity_metrics", samples=samples, nli_model=str(tmp_path),
        nli_entailment="Entailment", nli_contradiction="contradiction",
    )  # fmt: skip
    # By hand with the model itself: each ordered pair alone, softmax, top label's probability × weight.
    weight = {"CONTRADICTION": 1.0, "NEUTRAL": 0.0, "ENTAILMENT": -1.0}
    tok = tokenizer
    tok.pad_token = tok.pad_token or tok.eos_token

    def directed(p, h):
        with torch.no_grad():
            probs = torch.softmax(model(**tok(p, h, return_tensors="pt")).logits[0], -1)
        top = int(probs.argmax())
        return float(probs[top]) * weight[labels[top]]

    per_set = [
        np.mean([directed(s[i], s[j]) + directed(s[j], s[i]) for i in range(3) for j in range(i)])
        for s in samples
    ]
    assert res["per_input_nli_score"].value == pytest.approx(np.mean(per_set), abs=1e-5)
    with pytest.raises(MetricError, match="no label 'entails'"):
        run_metric(
            "rlhf_diversity_metrics", samples=samples, nli_model=str(tmp_path), nli_entailment="entails"
        )
