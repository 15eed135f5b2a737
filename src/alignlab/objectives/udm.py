"""BCO's underlying distribution matching (UDM): P(desirable | prompt) from a classifier on prompt embeddings.

The embeddings come from the loop (``DataContext.embed``, ``models/embedding.py``): objectives load no
model.

Jung et al. 2024 (arXiv 2404.04656) weight each undesirable example by the density ratio
w(x) = p(x) / (1 - p(x)), clipped to [min_density_ratio, max_density_ratio], where p(x) is the probability
that prompt x comes from the desirable set, estimated by logistic regression on frozen prompt embeddings
fitted on up to ``prompt_sample_size`` prompts of each class. Checked: huggingface/trl
trl/experimental/bco/bco_trainer.py (``_vectorize_prompt``, ``_get_prompt_embeddings``, the
``LogisticRegression(class_weight="balanced")`` fit on sampled chosen/rejected prompt embeddings,
``_get_udm_weight``) and bco_config.py (``prompt_sample_size`` 1024). TRL uses scikit-learn; here the
same model — L2-penalised (C = 1) logistic regression with balanced class weights — is fitted with
torch's L-BFGS, so alignlab needs no scikit-learn.

In training, :class:`UdmWeights` is BCO's loop callback: it fits the classifier once, on the training
records, and puts P(desirable | prompt) into ``Record.extras["prob_desirable"]`` of the training and the
evaluation records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from alignlab.data.records import Record
from alignlab.objectives.callbacks import Callback, DataContext

Embed = Callable[[Sequence[str], str], Tensor]  # (texts, encoder) -> mean-pooled embeddings

EXTRAS_KEY = "prob_desirable"  # Record.extras key, and the Scores.extra key the BCO loss reads


def fit_logistic_regression(
    features: Tensor, labels: Tensor, c: float = 1.0, max_iter: int = 500
) -> tuple[Tensor, Tensor]:
    """(w, b) minimising ½·|w|² + C·Σ_i s_i·log(1 + exp(-y_i·(w·x_i + b))) with y ∈ {-1, +1} and balanced
    class weights s_i = n / (2·n_class(i)): scikit-learn's ``LogisticRegression(C=c,
    class_weight="balanced")`` objective (the intercept is not penalised)."""
    x = features.double()
    y = labels.double() * 2 - 1
    n = float(len(y))
    positives = float((y > 0).sum())
    if positives in (0.0, n):
        raise ValueError(
            "UDM needs prompts of both classes (desirable and undesirable) to fit its classifier"
        )
    sample_weight = torch.where(y > 0, n / (2 * positives), n / (2 * (n - positives)))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [w, b], max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def objective() -> Tensor:
        optimiser.zero_grad()
        margins = y * (x @ w + b)
        loss = 0.5 * (w * w).sum() + c * (sample_weight * torch.nn.functional.softplus(-margins)).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(objective)
    return w.detach(), b.detach()


def fit_udm(
    records: list[Record], embed: Embed, encoder: str, prompt_sample_size: int = 1024, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """The UDM classifier (w, b) fitted on up to ``prompt_sample_size`` prompts of desirable and of
    undesirable completions of ``records`` (sampled without replacement; TRL samples with)."""
    desirable, undesirable = [], []
    for i, record in enumerate(records):
        for label in record.labels or []:
            (desirable if label else undesirable).append(i)
    rng = random.Random(seed)
    desirable = rng.sample(desirable, min(prompt_sample_size, len(desirable)))
    undesirable = rng.sample(undesirable, min(prompt_sample_size, len(undesirable)))
    embeddings = embed([records[i].prompt_text() for i in desirable + undesirable], encoder)
    labels = torch.tensor([1.0] * len(desirable) + [0.0] * len(undesirable))
    return fit_logistic_regression(embeddings, labels)


def add_prob_desirable(
    records: list[Record], embed: Embed, encoder: str, classifier: tuple[Tensor, Tensor]
) -> list[Record]:
    """Set ``extras["prob_desirable"]`` = σ(w·embed(prompt) + b) on every record of ``records``."""
    w, b = classifier
    embeddings = embed([r.prompt_text() for r in records], encoder)
    probs = torch.sigmoid(embeddings.double() @ w + b)
    for record, prob in zip(records, probs.tolist()):
        record.extras[EXTRAS_KEY] = prob
    return records


class UdmWeights(Callback):
    """BCO's loop callback: fit the UDM classifier on the training records (once), weight every split."""

    name = "bco (udm)"

    def __init__(self, encoder: str, prompt_sample_size: int = 1024):
        self.encoder, self.prompt_sample_size = encoder, prompt_sample_size
        self.classifier: tuple[Tensor, Tensor] | None = None

    def on_data(self, data: DataContext) -> list[str]:
        if self.classifier is None:
            self.classifier = fit_udm(data.train_records, data.embed, self.encoder, self.prompt_sample_size)
        add_prob_desirable(data.records, data.embed, self.encoder, self.classifier)
        return [
            f"bco: P(desirable | prompt) from the UDM classifier ({self.encoder}) fitted on training prompts"
        ]
