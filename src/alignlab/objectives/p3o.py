"""P3O: Pairwise Proximal Policy Optimization (Wu et al. 2023, arXiv 2310.00212) — the pairwise clipped loss.

Two samples y1, y2 of the same prompt from π_old; only their reward difference is used, so the update is
invariant to any prompt-dependent shift r(x, y) → r(x, y) + c(x) (the paper's "reward equivalence").
"""

from __future__ import annotations

import torch
from torch import Tensor

P3O_VARIANTS = ("separate", "joint")


def p3o_pair_loss(
    logps: Tensor,
    old_logps: Tensor,
    rewards: Tensor,
    kl: Tensor | None = None,
    beta: float = 0.0,
    clip: float = 0.2,
    variant: str = "separate",
) -> Tensor:
    """Per-pair P3O loss; every argument is ``[P, 2]`` (the two samples of a prompt), the result ``[P]``.

    R_j = r(x, y_j) − β·KL_j (KL_j the sequence KL of sample j, usually Σ_t log π_old − log π_ref) and
    Δ = sg(R_1 − R_2). Sequence ratios ρ_j = π_θ(y_j|x)/π_old(y_j|x) = exp(logps_j − old_logps_j).

    ``separate`` (P3O-V1, each ratio clipped on its own):
        L = −½·[min(ρ_1Δ, clip(ρ_1, 1−ε, 1+ε)Δ) + min(−ρ_2Δ, −clip(ρ_2, 1−ε, 1+ε)Δ)]
    ``joint`` (P3O-V2, the ratio of ratios clipped): with ρ = ρ_1/ρ_2,
        L = −½·min(ρΔ, clip(ρ, 1−ε, 1+ε)Δ)
    At ρ = 1 both give the pairwise policy gradient −½·Δ·∇(log π(y_1) − log π(y_2)).
    Unverified: no official code was found with the search tools; the two clipping forms follow
    METHODS.md's P3O block (paper recalled, not opened). The reward-equivalence invariance holds by
    construction (only Δ enters).
    """
    if variant not in P3O_VARIANTS:
        raise ValueError(f"p3o: variant must be one of {P3O_VARIANTS}, got '{variant}'")
    for name, t in (("logps", logps), ("old_logps", old_logps), ("rewards", rewards)):
        if t.dim() != 2 or t.shape[-1] != 2:
            raise ValueError(f"p3o: {name} must be [pairs, 2], got {tuple(t.shape)}")
    shaped = rewards if kl is None else rewards - beta * kl
    delta = (shaped[:, 0] - shaped[:, 1]).detach()
    log_ratio = logps - old_logps.detach()
    if variant == "separate":
        ratio = torch.exp(log_ratio)
        clipped = ratio.clamp(1 - clip, 1 + clip)
        first = torch.minimum(ratio[:, 0] * delta, clipped[:, 0] * delta)
        second = torch.minimum(-ratio[:, 1] * delta, -clipped[:, 1] * delta)
        return -0.5 * (first + second)
    ratio = torch.exp(log_ratio[:, 0] - log_ratio[:, 1])
    return -0.5 * torch.minimum(ratio * delta, ratio.clamp(1 - clip, 1 + clip) * delta)
