"""What's In My Human Feedback (WIMHF, 2025): which interpretable directions of the responses predict the labels.

1. Δ_i = e(chosen_i) − e(rejected_i) for each pair's response embeddings (divided by one overall std).
2. A sparse autoencoder on {Δ_i} ∪ {−Δ_i} (both orders, so no direction is favoured): a = ReLU(W_e(Δ − b_d) + b_e),
   Δ̂ = W_dᵀ a + b_d, loss ‖Δ − Δ̂‖² + λ‖a‖₁, decoder rows kept at unit norm (Bricken et al. 2023's recipe).
3. A logistic regression (L2) of the label on the activations: a(Δ_i) → 1, a(−Δ_i) → 0. Features ranked by
   |coefficient|·std(activation): the directions the annotators rewarded or penalised.
4. Interpretation: each feature's correlation with named per-pair attributes (e.g. length difference) when given
   (the paper asks an LLM to describe the top-activating examples; here the attributes stand in for it).

Uncertainty: the probe's held-out accuracy (5-fold over pairs) with its SE.

checked: abstract only (unverified in code); the METHODS.md test (a planted length feature is recovered as the top
predictive feature) is tests/eval/test_feedback_metrics.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from alignlab.eval.feedback_metrics import fit_probe
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import MetricResult, proportion_estimate


def train_sae(
    x: np.ndarray, n_features: int, l1: float, steps: int, seed: int
) -> tuple[torch.nn.Module, np.ndarray]:
    """A ReLU sparse autoencoder on rows of ``x``; returns (encoder as a module, activations of x)."""
    gen = torch.Generator().manual_seed(seed)
    d = x.shape[1]
    data = torch.as_tensor(x, dtype=torch.float32)
    w_enc = torch.nn.Parameter(torch.randn(n_features, d, generator=gen) / d**0.5)
    w_dec = torch.nn.Parameter(w_enc.detach().clone())
    b_enc = torch.nn.Parameter(torch.zeros(n_features))
    b_dec = torch.nn.Parameter(data.mean(0).clone())
    opt = torch.optim.Adam([w_enc, w_dec, b_enc, b_dec], lr=1e-2)
    for _ in range(steps):
        acts = torch.relu((data - b_dec) @ w_enc.T + b_enc)
        recon = acts @ w_dec + b_dec
        loss = ((recon - data) ** 2).sum(1).mean() + l1 * acts.abs().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec /= w_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)

    class Encoder(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.relu((z - b_dec) @ w_enc.T + b_enc)

    enc = Encoder()
    with torch.no_grad():
        return enc, enc(data).numpy().astype(float)


@register_metric(
    "wimhf",
    paper="What's In My Human Feedback? (2025): sparse autoencoders on preference-data embeddings",
    inputs="feedback",
    checked="abstract only (unverified in code): SAE on Δ-embeddings, logistic regression on activations",
)
def wimhf(
    *,
    chosen_embeddings: Sequence[Sequence[float]],
    rejected_embeddings: Sequence[Sequence[float]],
    attributes: Mapping[str, Sequence[float]] | None = None,
    n_features: int = 16,
    l1: float = 0.05,
    steps: int = 400,
    top: int = 5,
    seed: int = 0,
) -> MetricResult:
    """Sparse features of chosen − rejected embeddings that predict the preference, ranked, with the named
    attributes each one tracks and the held-out accuracy of the probe."""
    c, r = np.asarray(chosen_embeddings, float), np.asarray(rejected_embeddings, float)
    if c.ndim != 2 or c.shape != r.shape:
        raise MetricError(
            f"embeddings of shapes {c.shape} and {r.shape}; give one row per pair for each side"
        )
    n = len(c)
    if n < 10:
        raise MetricError(f"wimhf needs at least 10 pairs, got {n}")
    delta = c - r
    delta = delta / (delta.std() + 1e-12)  # one scale for all dimensions: the geometry is kept
    both = np.vstack([delta, -delta])
    _, acts = train_sae(both, n_features, l1, steps, seed)
    pos, neg = acts[:n], acts[n:]
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    fold = np.arange(n) % 5
    correct = np.zeros(2 * n)
    for f in range(5):
        tr, te = fold != f, fold == f
        w = fit_probe(np.vstack([pos[tr], neg[tr]]), np.concatenate([np.ones(tr.sum()), np.zeros(tr.sum())]))
        for side, x, label in ((0, pos[te], 1.0), (1, neg[te], 0.0)):
            pred = (np.hstack([x, np.ones((len(x), 1))]) @ w > 0).astype(float)
            correct[side * n + np.flatnonzero(te)] = pred == label
    w = fit_probe(np.vstack([pos, neg]), labels)[:-1]
    importance = np.abs(w) * acts.std(0)
    order = np.argsort(-importance)[:top]
    features = []
    for j in order:
        entry = {
            "feature": int(j),
            "coefficient": float(w[j]),
            "importance": float(importance[j]),
            "active_fraction": float((pos[:, j] > 0).mean()),
        }
        if attributes:
            corr = {}
            for name, values in attributes.items():
                v = np.asarray(values, float)
                if len(v) != n:
                    raise MetricError(f"attribute '{name}' has {len(v)} values for {n} pairs")
                a = pos[:, j] - neg[:, j]  # the feature's signed response to the pair
                corr[name] = float(np.corrcoef(a, v)[0, 1]) if a.std() > 0 and v.std() > 0 else 0.0
            entry["correlation"] = corr
        features.append(entry)
    return MetricResult(
        "wimhf",
        {"probe_accuracy": proportion_estimate(correct, 100.0)},
        {"top_features": features, "n_features": n_features, "pairs": n},
    )
