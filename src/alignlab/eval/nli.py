"""NLI diversity (Stasaski & Hearst 2022, as Kirk et al. 2023 use it for ``rlhf_diversity_metrics``).

An NLI classifier reads each ordered pair of a set's outputs (premise a, hypothesis b). As in the official code
(facebookresearch/rlfh-gen-div rlvsil/diversity/similarity_metrics.py ``NLISimilarity``, ``top_k = 1``), each
direction contributes p̂·w(ℓ̂), the probability of the top label ℓ̂ times its weight w(contradiction) = +1,
w(neutral) = 0, w(entailment) = −1, and a pair's score is the sum over both directions, s_ab ∈ [−2, 2]. Over a
set of K outputs the pairs are the K(K − 1)/2 unordered ones (rlvsil/diversity/metric.py
``Similarity2DiversityMetric``):

    nli_score(set)     = mean_{a<b} s_ab                  (higher = more contradiction = more diverse)
    nli_from_sim(set)  = 1 − mean_{a<b} s_ab              (what rlfh-gen-div's ``nli_from_sim`` reports)

The official reduction ``similarity2diversity_function = 1 − mean`` treats s as a similarity although s grows
with contradiction, so ``nli_from_sim`` falls as outputs contradict each other; both are reported and named.
Differences from the official code: the pair is encoded as the tokenizer's sentence pair (the official text is
``f"{a}.</s></s>{b}."`` for roberta-large-mnli, the same pair with a period added), and any sequence-
classification model with entailment/contradiction labels can be plugged in (``load_nli_classifier``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from alignlab.eval.registry import MetricError

# (premises, hypotheses) -> probabilities, one row per pair, columns (entailment, neutral, contradiction).
NLIClassifier = Callable[[Sequence[str], Sequence[str]], np.ndarray]
LABEL_WEIGHTS = np.array([-1.0, 0.0, 1.0])  # entailment, neutral, contradiction


def pair_scores(classify: NLIClassifier, texts: Sequence[str]) -> np.ndarray:
    """s_ab for every unordered pair a < b of ``texts`` (module docstring), in (i, j) order with j < i."""
    pairs = [(i, j) for i in range(len(texts)) for j in range(i)]
    premises = [texts[i] for i, j in pairs] + [texts[j] for i, j in pairs]
    hypotheses = [texts[j] for i, j in pairs] + [texts[i] for i, j in pairs]
    probs = np.asarray(classify(premises, hypotheses), dtype=float)
    if probs.shape != (len(premises), 3):
        raise MetricError(
            f"the NLI classifier returned shape {probs.shape}, expected ({len(premises)}, 3) "
            "probabilities of (entailment, neutral, contradiction)"
        )
    top = probs.argmax(axis=1)
    directed = probs[np.arange(len(top)), top] * LABEL_WEIGHTS[top]
    return directed[: len(pairs)] + directed[len(pairs) :]


def nli_score(classify: NLIClassifier, texts: Sequence[str]) -> float:
    """mean over unordered pairs of s_ab (higher = more contradiction between the outputs)."""
    return float(pair_scores(classify, texts).mean())


def load_nli_classifier(
    path: str | Path,
    entailment: str = "entailment",
    contradiction: str = "contradiction",
    neutral: str | None = "neutral",
    batch_size: int = 32,
    max_length: int = 512,
) -> NLIClassifier:
    """A transformers sequence-classification model (saved at ``path``) as an NLI classifier. The label names
    are matched case-insensitively against the model's ``id2label``; a two-label model (no neutral) gets
    neutral probability 0."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise MetricError(f"--nli-model {path}: no such folder (a saved sequence-classification model)")
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # left padding would shift the positions of a padded pair's tokens
    # The tokenizer pads; decoder classifiers read the last token that is not its pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    names = {str(v).lower(): int(k) for k, v in model.config.id2label.items()}
    wanted = [entailment, neutral, contradiction]
    columns = []
    for name in wanted:
        if name is None:
            columns.append(None)
        elif name.lower() in names:
            columns.append(names[name.lower()])
        else:
            raise MetricError(
                f"{path}: the model has no label '{name}' (its labels: {', '.join(map(str, model.config.id2label.values()))});"
                " name its entailment/contradiction/neutral labels with the nli_* options"
            )

    def classify(premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(premises), batch_size):
            enc = tokenizer(
                list(premises[start : start + batch_size]),
                list(hypotheses[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            with torch.no_grad():
                p = torch.softmax(model(**enc).logits.float(), dim=-1).numpy()
            out.append(np.stack([p[:, c] if c is not None else np.zeros(len(p)) for c in columns], axis=1))
        return np.concatenate(out) if out else np.zeros((0, 3))

    return classify
