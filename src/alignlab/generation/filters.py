"""The sampling distribution of one decoding step: temperature, then top-k, top-p and min-p.

For next-token logits z and temperature T > 0:

    p_T(v)      = softmax(z / T)_v                                  the temperature-scaled distribution
    K           = the tokens the filters keep (below)               the support
    kept_logmass = log Σ_{v∈K} p_T(v)                               ≤ 0, exactly 0 when nothing is cut
    p_S(v)      = p_T(v) / exp(kept_logmass) for v ∈ K, else 0      the distribution a token is drawn from
    log p_S(v)  = log p_T(v) − kept_logmass

The filters are applied in Hugging Face ``generate``'s order (TopK, TopP, MinP logits warpers), each on the
distribution the previous one left (renormalised over what it kept), and each keeps at least one token:
- top-k (k > 0): keep v if z_v ≥ the k-th largest logit (ties at the k-th value are kept);
- top-p (p < 1): sort the remaining tokens by probability, descending; keep a token while the mass of the
  tokens before it is < p (the smallest prefix whose mass reaches p);
- min-p (m > 0): keep v if p(v) ≥ m · max_u p(u) (a ratio, so the renormalisation does not matter).

Temperature 0 is greedy: the arg-max is taken and the recorded log-probs are those of the unfiltered
temperature-1 distribution (a point mass has no useful log-prob).

Two exact draws from p_S:
- ``inverse_cdf_draw`` (the sampler's default): one uniform u ~ U[0, 1) per row, token = the first v whose
  cumulative kept weight C_v = Σ_{u≤v, u∈K} exp(z_u/T − max) exceeds u·C_V (float64 cumulative sums, so a
  token's interval is its weight to ~1e-16). It draws V times fewer random numbers than the race below and
  gives the log-prob of the drawn token from the same pass: log p_S(y) = z_y/T − max − log C_V.
- ``draw``, the exponential race of ``torch.multinomial``: token = argmax_v p_S(v) / E_v with E_v ~ Exp(1)
  (``generate`` draws this way, so with the same seed both give the same samples; ``draw="race"``).
Either way the random numbers are drawn for every row of the chunk at every step, so the random stream does
not depend on which rows have already finished.
"""

from __future__ import annotations

import torch
from torch import Tensor


def filter_mask(scaled: Tensor, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> Tensor | None:
    """Boolean [B, V] mask of kept tokens for temperature-scaled logits ``scaled``; None when no filter is on."""
    if top_k <= 0 and top_p >= 1.0 and min_p <= 0.0:
        return None
    keep = torch.ones_like(scaled, dtype=torch.bool)
    if 0 < top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[..., -1:]
        keep &= scaled >= kth
    if top_p < 1.0:
        probs = torch.softmax(scaled.masked_fill(~keep, float("-inf")), dim=-1)
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(-1) - sorted_probs
        keep_sorted = mass_before < top_p
        keep_sorted[..., 0] = True
        keep &= torch.zeros_like(keep).scatter(-1, order, keep_sorted)
    if min_p > 0.0:
        probs = torch.softmax(scaled.masked_fill(~keep, float("-inf")), dim=-1)
        threshold = min_p * probs.max(dim=-1, keepdim=True).values
        keep &= probs >= threshold
    return keep


def step_distribution(
    logits: Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """For next-token logits [B, V], in float32: (z / T, log p_T, kept_logmass [B], kept mask or None)."""
    scaled = logits.float() / (temperature if temperature > 0 else 1.0)
    logp = torch.log_softmax(scaled, dim=-1)
    keep = filter_mask(scaled, top_k, top_p, min_p) if temperature > 0 else None
    if keep is None:
        return scaled, logp, torch.zeros(logp.shape[0], dtype=logp.dtype, device=logp.device), None
    kept_logmass = torch.logsumexp(logp.masked_fill(~keep, float("-inf")), dim=-1)
    return scaled, logp, kept_logmass, keep


def draw(scaled: Tensor, keep: Tensor | None, noise: Tensor) -> Tensor:
    """Token ids [B] drawn from p_S given exponential noise [B, V] (see the module docstring)."""
    if keep is not None:
        scaled = scaled.masked_fill(~keep, float("-inf"))
    return torch.argmax(torch.softmax(scaled, dim=-1) / noise, dim=-1)


def inverse_cdf_draw(scaled: Tensor, keep: Tensor | None, uniforms: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Token ids [B] drawn from p_S by inverse CDF with ``uniforms`` [B] in [0, 1), their log p_S [B] and
    the kept_logmass [B] (0 without a filter); see the module docstring. One pass of exp over [B, V]
    replaces ``step_distribution``'s log-softmax plus the race's softmax and [B, V] noise."""
    top = scaled.amax(dim=-1, keepdim=True)  # the values of max(dim), ~10x faster (no arg-max)
    weights = torch.exp(scaled - top)  # in (0, 1], the arg-max has weight 1
    total = None  # the unfiltered total, read only for the kept mass of a filtered step
    if keep is not None:
        total = weights.sum(dim=-1, dtype=torch.float64)
        weights = weights.masked_fill(~keep, 0.0)
    cdf = torch.cumsum(weights, dim=-1, dtype=torch.float64)
    kept_total = cdf[:, -1]
    target = uniforms.to(torch.float64) * kept_total
    token = torch.searchsorted(cdf, target[:, None], right=True)
    # u·C_V can round up to C_V itself: take the last token with weight instead of one past the end
    last = torch.searchsorted(cdf, cdf[:, -1:].contiguous(), right=False)
    token = torch.minimum(token, last)[:, 0]
    log_kept = torch.log(kept_total)
    token_logp = (scaled.gather(-1, token[:, None])[:, 0] - top[:, 0]).double() - log_kept
    kept_logmass = log_kept - torch.log(total) if total is not None else torch.zeros_like(log_kept)
    return token, token_logp.to(scaled.dtype), kept_logmass.to(scaled.dtype)
