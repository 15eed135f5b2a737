"""The per-token statistics the engine computes: one table, each statistic with one name.

Each entry is computed at every scored completion position from the policy's next-token log-probabilities
``logp [M, V]`` (and the reference's, ``ref_logp``, when it compares the two), chunk by chunk with the
log-softmax recomputed in backward, and fills the :class:`~alignlab.scoring.scores.Scores` field of the
same name, padded ``[.., T]`` with ``token_mask``. The name is also the engine need that asks for it
(``scoring.scores.NEEDS``). ``token_logps`` is always computed (the summed ``logps`` are its sums).
Adding a statistic is one entry here and one ``Scores`` field.

A statistic an objective only logs is asked for by its name in :data:`WITHOUT_GRADIENT` (e.g.
``token_entropy_metric``): the same values in the same field, computed under ``no_grad`` after the others,
so the backward pass neither differentiates it nor recomputes it (the checkpoint's recomputation stops
once the tensors the gradient needs are rebuilt). An objective that differentiates it (Quark's entropy
term) asks for the statistic itself, which wins when both are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenStatistic:
    name: str  # the engine need and the Scores field
    compute: Callable[[Tensor, Tensor, Tensor | None], Tensor]  # (logp [M,V], targets [M], ref_logp) -> [M]
    doc: str
    needs_reference: bool = False  # runs the reference model's LM head at every position (never cached)


def _target_logp(logp: Tensor, targets: Tensor, ref_logp: Tensor | None) -> Tensor:
    return logp.gather(-1, targets[:, None])[:, 0]


def _entropy(logp: Tensor, targets: Tensor, ref_logp: Tensor | None) -> Tensor:
    return -(logp.exp() * logp).sum(-1)


def _log_sq_mass(logp: Tensor, targets: Tensor, ref_logp: Tensor | None) -> Tensor:
    return torch.logsumexp(2 * logp, -1)


def _kl_ref_policy(logp: Tensor, targets: Tensor, ref_logp: Tensor | None) -> Tensor:
    assert ref_logp is not None
    return (ref_logp.exp() * (ref_logp - logp)).sum(-1)


def _kl_policy_ref(logp: Tensor, targets: Tensor, ref_logp: Tensor | None) -> Tensor:
    assert ref_logp is not None
    if logp.shape[-1] > ref_logp.shape[-1]:
        # the policy has tokens the reference lacks (Quark's reward tags, added after the reference was
        # copied): the KL is over the reference's vocabulary with the policy renormalised on it, as Quark's
        # official code drops the tag columns before its softmax (GXimingLu/Quark main.py, ConditionTrainer.loss)
        logp = logp[..., : ref_logp.shape[-1]].log_softmax(-1)
    return (logp.exp() * (logp - ref_logp)).sum(-1)


def _logp_on_ref_support(logp: Tensor, targets: Tensor, ref_logp: Tensor | None) -> Tensor:
    """log π(y_t) − log Σ_{v ∈ S} π(v), S = the tokens the reference gives non-zero probability, and y_t."""
    assert ref_logp is not None
    allowed = torch.isfinite(ref_logp).scatter(-1, targets[:, None], True)
    mass = torch.logsumexp(logp.masked_fill(~allowed, float("-inf")), -1)
    # every token allowed: the mass is exactly 1 (logp is a log-softmax), not 1 up to round-off
    return _target_logp(logp, targets, None) - torch.where(allowed.all(-1), torch.zeros_like(mass), mass)


TOKEN_STATISTICS: dict[str, TokenStatistic] = {
    s.name: s
    for s in (
        TokenStatistic(
            "token_logps",
            _target_logp,
            "per-token policy log-probs log π(y_t | x, y_<t) of completion tokens, padded [.., T] with token_mask",
        ),
        TokenStatistic(
            "token_entropy", _entropy, "per-token entropy -Σ_v π(v) log π(v) of the policy's next token"
        ),
        TokenStatistic(
            "token_log_sq_mass",
            _log_sq_mass,
            "per-token log Σ_v π(v)² of the policy's next token (WPO's weight)",
        ),
        TokenStatistic(
            "token_kl",
            _kl_ref_policy,
            "per-token KL(π_ref ‖ π_θ) over the full vocabulary (TDPO's sequential KL)",
            needs_reference=True,
        ),
        TokenStatistic(
            "token_kl_reverse",
            _kl_policy_ref,
            "per-token KL(π_θ ‖ π_ref) over the full vocabulary (the RLHF penalty's direction; a policy with "
            "extra tokens is renormalised over the reference's vocabulary)",
            needs_reference=True,
        ),
        TokenStatistic(
            "token_logps_ref_support",
            _logp_on_ref_support,
            "per-token policy log-probs renormalised over the tokens the reference gives non-zero probability "
            "(NLPO: the reference is the masking policy, whose head keeps its top-p nucleus); the taken token "
            "always counts as allowed",
            needs_reference=True,
        ),
    )
}


# need name -> the statistic it fills, computed without gradients (for logging only)
WITHOUT_GRADIENT: dict[str, str] = {"token_entropy_metric": "token_entropy"}


def without_gradient(needs: frozenset[str]) -> frozenset[str]:
    """The statistics ``needs`` asks for only to log: named in :data:`WITHOUT_GRADIENT`, not for themselves."""
    return frozenset(stat for need, stat in WITHOUT_GRADIENT.items() if need in needs and stat not in needs)


def requested(needs: frozenset[str]) -> tuple[TokenStatistic, ...]:
    """The statistics ``needs`` asks for (with gradients or only to log), ``token_logps`` first and always."""
    wanted = needs | without_gradient(needs)
    return (TOKEN_STATISTICS["token_logps"],) + tuple(
        s for name, s in TOKEN_STATISTICS.items() if name != "token_logps" and name in wanted
    )
