"""KL(π ‖ π_ref) estimated from samples of π: the mean of log π(y|x) − log π_ref(y|x) over y ∼ π(·|x).

An unbiased Monte Carlo estimate of the sequence-level KL (the "k1" estimator); it is exact in
expectation, can be negative on a few samples, and comes with its standard error.

Both log-probs are scored on the rollouts' token ids exactly as sampled (``generation.scoring``): a sample
that emitted EOS is scored with it, one cut at ``max_new_tokens`` without an EOS it never produced. (Scoring
re-tokenised text with an EOS appended, as this module once did, biases the estimate: the policy is charged
log π(EOS) at every cut sample.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from alignlab.generation.scoring import score_rollouts
from alignlab.generation.types import Rollout


def kl_from_logps(policy_logps: Tensor, reference_logps: Tensor) -> tuple[float, float]:
    """(mean, standard error) of log π − log π_ref over samples drawn from π."""
    diff = (policy_logps - reference_logps).double()
    n = diff.numel()
    if n == 0:
        raise ValueError("kl_from_logps: no samples")
    se = float(diff.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    return float(diff.mean()), se


def rollout_kl(
    policy: Any, reference: Any, rollouts: Sequence[Rollout], pad_id: int = 0
) -> tuple[float, float]:
    """KL(π ‖ π_ref) from ``rollouts`` sampled from ``policy`` itself: temperature 1, no top-k/top-p/min-p
    (otherwise they are samples of another distribution and the mean is not this KL)."""
    for i, rollout in enumerate(rollouts):
        meta = rollout.meta
        if (
            meta.get("temperature", 1.0) != 1.0
            or meta.get("top_k", 0)
            or meta.get("top_p", 1.0) < 1
            or meta.get("min_p", 0.0)
        ):
            raise ValueError(
                f"rollout {i} was sampled with temperature {meta.get('temperature')}, top_k {meta.get('top_k')}, "
                f"top_p {meta.get('top_p')}, min_p {meta.get('min_p')}: KL(π ‖ π_ref) needs samples of π itself "
                "(temperature 1, no filters)"
            )
    return kl_from_logps(
        score_rollouts(policy, rollouts, needs=frozenset(), pad_id=pad_id).logps.double(),
        score_rollouts(reference, rollouts, needs=frozenset(), pad_id=pad_id).logps.double(),
    )
