"""KL(π ‖ π_ref) estimated from samples of π: the mean of log π(y|x) − log π_ref(y|x) over y ∼ π(·|x).

An unbiased Monte Carlo estimate of the sequence-level KL (the "k1" estimator); it is exact in
expectation, can be negative on a few samples, and comes with its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from alignlab.scoring.rows import score_rows


def sequence_logps(model: Any, tokenizer: Any, prompts: Sequence[Any], completions: Sequence[str]) -> Tensor:
    """Summed log π(y|x) over each completion's tokens (EOS included, as in training), [N]."""
    return score_rows(
        model, tokenizer, list(prompts), list(completions), frozenset(), batch_size=64
    ).logps.double()


def kl_from_logps(policy_logps: Tensor, reference_logps: Tensor) -> tuple[float, float]:
    """(mean, standard error) of log π − log π_ref over samples drawn from π."""
    diff = (policy_logps - reference_logps).double()
    n = diff.numel()
    if n == 0:
        raise ValueError("kl_from_logps: no samples")
    se = float(diff.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    return float(diff.mean()), se
