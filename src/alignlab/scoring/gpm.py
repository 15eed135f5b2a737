"""GPM's preference score between two preference embeddings (Zhang et al. 2024, "General Preference
Modeling with Preference Representations", arXiv 2410.02197).

A GPM reward model's head gives each completion a 2k-dimensional embedding (``Scores.rewards``); the
``gpm`` objective trains on this score and the ``gpm`` judge turns it into P(i ≻ j) = σ(s / τ).
"""

from __future__ import annotations

from torch import Tensor


def gpm_score(v_i: Tensor, v_j: Tensor, eigenvalues: Tensor | None = None) -> Tensor:
    """s(i ≻ j) = Σ_k λ_k (v_i[2k]·v_j[2k+1] − v_i[2k+1]·v_j[2k]) = v_iᵀ Rᵀ v_j (0-indexed).

    R is block-diagonal with skew-symmetric 2×2 blocks [[0, −λ_k], [λ_k, 0]]; λ ≡ 1 without a prompt gate.
    Antisymmetric: s(i, j) = −s(j, i) and s(i, i) = 0.
    """
    if v_i.shape[-1] % 2:
        raise ValueError(f"gpm: the preference embedding needs an even size, got {v_i.shape[-1]}")
    a_even, a_odd = v_i[..., 0::2], v_i[..., 1::2]
    b_even, b_odd = v_j[..., 0::2], v_j[..., 1::2]
    per_block = a_even * b_odd - a_odd * b_even
    if eigenvalues is not None:
        per_block = per_block * eigenvalues
    return per_block.sum(-1)
