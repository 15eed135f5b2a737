"""Top-k / top-p / min-p against a numpy reference and against transformers' own logits warpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.generation.filters import draw, filter_mask, inverse_cdf_draw, step_distribution


def numpy_filtered(z: np.ndarray, temperature: float, top_k: int, top_p: float, min_p: float) -> np.ndarray:
    """The sampling distribution, written from the definitions one token at a time (float64)."""
    z = z.astype(np.float64) / temperature
    keep = np.ones(len(z), dtype=bool)
    if top_k > 0:
        kth = sorted(z, reverse=True)[top_k - 1]
        keep = np.array([v >= kth for v in z])

    def renormalised(keep: np.ndarray) -> np.ndarray:
        w = np.where(keep, np.exp(z - z.max()), 0.0)
        return w / w.sum()

    if top_p < 1:
        p = renormalised(keep)
        mass = 0.0
        new_keep = np.zeros_like(keep)
        for i in sorted(range(len(z)), key=lambda i: -p[i]):
            if not keep[i]:
                continue
            if mass < top_p:
                new_keep[i] = True
            mass += p[i]
        keep = new_keep
    if min_p > 0:
        p = renormalised(keep)
        keep = keep & (p >= min_p * p.max())
    return renormalised(keep)


LOGITS = np.array([2.0, 1.5, 1.2, 0.3, 0.0, -0.4, -1.0, -2.5], dtype=np.float32)
CASES = [
    (1.0, 0, 1.0, 0.0),
    (0.7, 0, 1.0, 0.0),
    (1.0, 3, 1.0, 0.0),
    (1.0, 0, 0.8, 0.0),
    (0.7, 0, 0.9, 0.0),
    (1.0, 0, 1.0, 0.2),
    (1.3, 5, 0.9, 0.1),
    (0.5, 6, 0.95, 0.05),
]


@pytest.mark.parametrize("temperature,top_k,top_p,min_p", CASES)
def test_step_distribution_matches_numpy(temperature, top_k, top_p, min_p) -> None:
    expected = numpy_filtered(LOGITS, temperature, top_k, top_p, min_p)
    scaled, logp, kept, keep = step_distribution(torch.tensor(LOGITS)[None], temperature, top_k, top_p, min_p)
    got = torch.exp(logp - kept[:, None])[0].double()
    if keep is not None:
        got = got.masked_fill(~keep[0], 0.0)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    # kept_logmass is the log of the kept tokens' temperature-scaled mass.
    z = LOGITS.astype(np.float64) / temperature
    p_t = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(float(kept[0]), np.log(p_t[expected > 0].sum()), atol=1e-6)


@pytest.mark.parametrize("temperature,top_k,top_p,min_p", CASES)
def test_empirical_frequencies_fit_the_numpy_distribution(temperature, top_k, top_p, min_p) -> None:
    from scipy.stats import chisquare

    expected = numpy_filtered(LOGITS, temperature, top_k, top_p, min_p)
    draws = 40_000
    logits = torch.tensor(LOGITS).expand(draws, -1)
    scaled, _, _, keep = step_distribution(logits, temperature, top_k, top_p, min_p)
    gen = torch.Generator().manual_seed(1234)
    noise = torch.empty(draws, len(LOGITS)).exponential_(1, generator=gen)
    counts = np.bincount(draw(scaled, keep, noise).numpy(), minlength=len(LOGITS))
    assert counts[expected == 0].sum() == 0  # nothing outside the support is ever drawn
    support = expected > 0
    _, p_value = chisquare(counts[support], draws * expected[support])
    assert p_value > 1e-3


@pytest.mark.parametrize("temperature,top_k,top_p,min_p", CASES)
def test_inverse_cdf_draw_fits_the_numpy_distribution(temperature, top_k, top_p, min_p) -> None:
    """The sampler's default draw: frequencies, the drawn token's log p_S and the kept mass, all against
    the numpy distribution written from the definitions."""
    from scipy.stats import chisquare

    expected = numpy_filtered(LOGITS, temperature, top_k, top_p, min_p)
    draws = 40_000
    logits = torch.tensor(LOGITS).expand(draws, -1)
    scaled = logits / temperature
    keep = filter_mask(scaled, top_k, top_p, min_p)
    uniforms = torch.rand(draws, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    token, token_logp, kept = inverse_cdf_draw(scaled, keep, uniforms)
    counts = np.bincount(token.numpy(), minlength=len(LOGITS))
    assert counts[expected == 0].sum() == 0
    support = expected > 0
    _, p_value = chisquare(counts[support], draws * expected[support])
    assert p_value > 1e-3
    np.testing.assert_allclose(token_logp.double().numpy(), np.log(expected[token.numpy()]), atol=1e-6)
    z = LOGITS.astype(np.float64) / temperature
    p_t = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(kept.double().numpy(), np.log(p_t[support].sum()), atol=1e-6)


def test_inverse_cdf_draw_at_the_edges_of_the_unit_interval() -> None:
    """u = 0 takes the first kept token, u just below 1 the last kept one (never a cut token past it)."""
    scaled = torch.tensor([[0.0, 1.0, 2.0, 0.5, -1.0]])
    keep = torch.tensor([[False, True, True, False, False]])
    for u, expected in ((0.0, 1), (1 - 2**-53, 2), (0.999999, 2)):
        token, _, _ = inverse_cdf_draw(scaled, keep, torch.tensor([u], dtype=torch.float64))
        assert int(token) == expected


def test_masks_match_transformers_warpers_on_random_logits() -> None:
    from transformers.generation.logits_process import MinPLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 300, generator=gen) * 3
    for top_k, top_p, min_p in [(20, 1.0, 0.0), (0, 0.9, 0.0), (0, 1.0, 0.1), (40, 0.8, 0.05)]:
        scores = logits.clone()
        if top_k:
            scores = TopKLogitsWarper(top_k)(None, scores)
        if top_p < 1:
            scores = TopPLogitsWarper(top_p)(None, scores)
        if min_p:
            scores = MinPLogitsWarper(min_p)(None, scores)
        ours = filter_mask(logits, top_k, top_p, min_p)
        assert torch.equal(ours, torch.isfinite(scores)), (top_k, top_p, min_p)


def test_no_filter_means_no_mask_and_zero_mass() -> None:
    scaled, logp, kept, keep = step_distribution(torch.randn(3, 10), 0.8)
    assert keep is None and torch.equal(kept, torch.zeros(3))
    assert bool(filter_mask(torch.randn(2, 5), top_k=5).all())  # k ≥ vocabulary keeps everything
