"""Diagnostics read from a model's own tokens: CHES (Razin et al. 2024), token distribution shift (Lin et al.
2023, URIAL) and top-k over-optimisation indicators (Shi et al. 2024).

Positions: for a prompt x of P tokens and a response y, the states that predict y_1..y_|y| are those of the
prefixes (x, y_<k), at positions P − 1 … P + |y| − 2 of the concatenated ids (:func:`response_states`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import MetricResult, mean_estimate, proportion_estimate


@torch.no_grad()
def response_states(
    model: Any, prompt_ids: Sequence[int], response_ids: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(last-layer hidden states [|y|, H], logits [|y|, V]) at the positions that predict each response token."""
    if not response_ids:
        raise MetricError("an empty response has no positions to read")
    if not prompt_ids:
        raise MetricError("a response needs at least one prompt token before it")
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], device=next(model.parameters()).device)
    out = model(input_ids=ids, output_hidden_states=True)
    start, end = len(prompt_ids) - 1, len(prompt_ids) + len(response_ids) - 1
    return out.hidden_states[-1][0, start:end].double().cpu(), out.logits[0, start:end].double().cpu()


def ches_score(h_chosen: np.ndarray, h_rejected: np.ndarray, length_normalize: bool = False) -> float:
    """CHES_x(y⁺, y⁻) = ⟨Σh⁺, Σh⁻⟩ − ‖Σh⁺‖² (each sum over the response positions); length-normalised:
    ⟨Σh⁺, Σh⁻⟩/(|y⁺||y⁻|) − ‖Σh⁺‖²/|y⁺|²."""
    hp, hn = np.asarray(h_chosen, float), np.asarray(h_rejected, float)
    sp, sn = hp.sum(0), hn.sum(0)
    if not length_normalize:
        return float(sp @ sn - sp @ sp)
    return float(sp @ sn / (len(hp) * len(hn)) - sp @ sp / len(hp) ** 2)


@register_metric(
    "ches",
    paper="Razin et al. 2024, Unintentional Unalignment: Likelihood Displacement in DPO (arXiv 2410.08847)",
    inputs="model",
    checked="the authors' compute_ches_scores (sum of hidden states from the last prompt token to the response's "
    "second-to-last, length normalisation by |y⁺||y⁻| and |y⁺|²), read with the search tool",
)
def ches(
    *,
    chosen_states: Sequence[np.ndarray],
    rejected_states: Sequence[np.ndarray],
    length_normalize: bool = False,
) -> MetricResult:
    """Centered Hidden Embedding Similarity per preference pair: high values flag likely likelihood displacement."""
    if len(chosen_states) != len(rejected_states):
        raise MetricError(f"ches: {len(chosen_states)} chosen and {len(rejected_states)} rejected responses")
    scores = np.array([ches_score(a, b, length_normalize) for a, b in zip(chosen_states, rejected_states)])
    order = np.argsort(-scores)
    return MetricResult(
        "ches",
        {"mean_ches": mean_estimate(scores)},
        {"scores": scores.tolist(), "highest_first": order.tolist(), "length_normalize": length_normalize},
    )


def shift_categories(tokens: np.ndarray, base_logits: np.ndarray) -> np.ndarray:
    """Rank (1-based) of each aligned token under the base distribution at its position."""
    logits = np.asarray(base_logits, float)
    chosen = logits[np.arange(len(tokens)), tokens]
    return 1 + (logits > chosen[:, None]).sum(axis=1)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@register_metric(
    "token_distribution_shift",
    paper="Lin et al. 2023, The Unlocking Spell on Base LLMs (URIAL, arXiv 2312.01552)",
    inputs="model",
    checked="Lin et al. 2023 §2 (unverified in code): rank 1 unshifted, 2–3 marginal, > 3 shifted",
)
def token_distribution_shift(
    *,
    tokens: Sequence[Sequence[int]],
    base_logits: Sequence[np.ndarray],
    aligned_logits: Sequence[np.ndarray] | None = None,
) -> MetricResult:
    """Fractions of the aligned model's tokens that the base model ranks 1st (unshifted), 2nd–3rd (marginal),
    lower (shifted), with KL(aligned ‖ base) per position when the aligned logits are given."""
    ranks, kls = [], []
    for i, (t, b) in enumerate(zip(tokens, base_logits)):
        t = np.asarray(t, dtype=int)
        if len(t) != len(b):
            raise MetricError(f"response {i}: {len(t)} tokens but {len(b)} rows of base logits")
        ranks.append(shift_categories(t, b))
        if aligned_logits is not None:
            la, lb = _log_softmax(np.asarray(aligned_logits[i], float)), _log_softmax(np.asarray(b, float))
            kls.append((np.exp(la) * (la - lb)).sum(-1))
    r = np.concatenate(ranks)
    flat = np.concatenate([np.asarray(t, dtype=int) for t in tokens])
    shifted = Counter(flat[r > 3].tolist()).most_common(20)
    estimates = {
        "unshifted": proportion_estimate(r == 1),
        "marginal": proportion_estimate((r >= 2) & (r <= 3)),
        "shifted": proportion_estimate(r > 3),
    }
    if kls:
        estimates["kl_aligned_base"] = mean_estimate(np.concatenate(kls))
    details = {"positions": int(r.size), "responses": len(ranks), "shifted_tokens": shifted}
    return MetricResult("token_distribution_shift", estimates, details)


def topk_indicators(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per position: H_k = −Σ_{i≤k} q_i log q_i with q the renormalised top-k probabilities; M_k = Σ_{i≤k} p_i."""
    logp = _log_softmax(np.asarray(logits, float))
    top = -np.sort(-logp, axis=-1)[:, :k]
    p = np.exp(top)
    mass = p.sum(-1)
    q = p / mass[:, None]
    return -(q * np.log(q)).sum(-1), mass


@register_metric(
    "topk_overopt_indicators",
    paper="Shi et al. 2024, Understanding Likelihood Over-optimisation in Direct Alignment Algorithms (arXiv 2410.11677)",
    inputs="model",
    checked="Shi et al. 2024 abstract (unverified in code): top-k entropy and top-k probability mass",
)
def topk_overopt_indicators(*, logits: Sequence[np.ndarray], k: int = 10) -> MetricResult:
    """Top-k entropy H_k and top-k mass M_k averaged over generated positions (falling values across
    checkpoints signal over-optimisation)."""
    if k < 1:
        raise MetricError(f"topk_overopt_indicators: k must be ≥ 1, got {k}")
    hs, ms = zip(*(topk_indicators(lg, k) for lg in logits)) if logits else ((), ())
    if not hs:
        raise MetricError("topk_overopt_indicators: no responses")
    h, m = np.concatenate(hs), np.concatenate(ms)
    return MetricResult(
        "topk_overopt_indicators",
        {"topk_entropy": mean_estimate(h), "topk_mass": mean_estimate(m)},
        {"k": k, "positions": int(h.size), "max_entropy": float(np.log(k))},
    )
