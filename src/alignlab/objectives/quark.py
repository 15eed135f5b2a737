"""Quark: Quantized Reward Konditioning (Lu et al. 2022, arXiv 2205.13636) — the data pool, its reward
quantiles and the conditioned NLL + KL − entropy loss.

The loop (explore with the best quantile token, score, add to the pool, re-quantise, train) is wired by
the online source; this module holds the pieces that define the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


def quark_tokens(num_quantiles: int = 5) -> list[str]:
    """The control tokens, best first: ``<|quark_0|>`` marks the highest-reward quantile."""
    if num_quantiles < 1:
        raise ValueError(f"quark: num_quantiles must be >= 1, got {num_quantiles}")
    return [f"<|quark_{k}|>" for k in range(num_quantiles)]


def quantile_ids(scores: Sequence[float], num_quantiles: int) -> list[int]:
    """Quantile index of each score (0 = best), as Quark's data pool assigns them.

    Sort by score, highest first (ties keep pool order); the first ⌊N/K⌋ get quantile 0, the next ⌊N/K⌋
    quantile 1, …, and the N mod K left over at the bottom join the last quantile K−1.
    Checked: GXimingLu/Quark data_pool.py (DataPool.add: sorted(reverse=True), cat_pos built the same way).
    """
    if num_quantiles < 1:
        raise ValueError(f"quark: num_quantiles must be >= 1, got {num_quantiles}")
    n = len(scores)
    order = sorted(range(n), key=lambda i: -float(scores[i]))  # stable: ties keep pool order
    per = n // num_quantiles
    out = [0] * n
    for rank, i in enumerate(order):
        out[i] = min(rank // per, num_quantiles - 1) if per > 0 else num_quantiles - 1
    return out


@dataclass
class QuarkPool:
    """Every (prompt, completion, reward) seen so far; ``quantiles()`` re-ranks the whole pool.

    Items whose reward is ``None`` (the judge could not score them) are dropped, as in the official pool.
    """

    num_quantiles: int = 5
    prompts: list[Any] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def add(
        self, prompts: Sequence[Any], completions: Sequence[str], rewards: Sequence[float | None]
    ) -> None:
        if not len(prompts) == len(completions) == len(rewards):
            raise ValueError(
                f"quark pool: {len(prompts)} prompts, {len(completions)} completions, {len(rewards)} rewards"
            )
        for p, c, r in zip(prompts, completions, rewards):
            if r is not None:
                self.prompts.append(p)
                self.completions.append(c)
                self.rewards.append(float(r))

    def __len__(self) -> int:
        return len(self.rewards)

    def quantiles(self) -> list[int]:
        return quantile_ids(self.rewards, self.num_quantiles)

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_quantiles": self.num_quantiles,
            "prompts": list(self.prompts),
            "completions": list(self.completions),
            "rewards": list(self.rewards),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> QuarkPool:
        return cls(
            state["num_quantiles"], list(state["prompts"]), list(state["completions"]), list(state["rewards"])
        )


def quark_loss(
    token_logps: Tensor,
    token_kl: Tensor,
    token_entropy: Tensor,
    token_mask: Tensor,
    kl_coef: float = 0.05,
    entropy_coef: float = 0.06,
) -> Tensor:
    """L = Σ_{i,t} m_{i,t}·(−log π_θ(y_t | ⟨r_k⟩, x, y_<t) + β·KL_t − α·H_t) / Σ_{i,t} m_{i,t}.

    ``token_kl[i, t]`` = KL(π_θ(·|⟨r_k⟩, x, y_<t) ‖ π_ref(·|x, y_<t)) over the vocabulary, ``token_entropy``
    the policy's entropy at that position; ``token_mask`` marks completion tokens. One token mean over the
    whole batch (Quark's ``reduce_mean(…, masks)``). β = 0.05, α = 0.06 are the official defaults.
    Checked: GXimingLu/Quark main.py (ConditionTrainer.loss: lm_loss + kl_coef·KL − entropy_coef·entropy,
    KLDivLoss(log_softmax(ref), softmax(policy)) summed over the vocabulary = KL(π_θ‖π_ref)) and
    arguments.py (n_extra_tokens=5, kl_coef=0.05, entropy_coef=0.06).
    """
    mask = token_mask.to(token_logps.dtype)
    per_token = -token_logps + kl_coef * token_kl - entropy_coef * token_entropy
    return (per_token * mask).sum() / mask.sum().clamp(min=1)
