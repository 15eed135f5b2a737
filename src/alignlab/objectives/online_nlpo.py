"""``nlpo`` as an online objective: Natural Language Policy Optimization (Ramamurthy et al. 2022, RL4LMs,
arXiv 2210.01241) — PPO on the policy restricted to the top-p nucleus of a masking policy π_ψ.

The masked policy is log π^m_θ(a|s) = log π_θ(a|s) − log Σ_{b∈M(s)} π_θ(b|s), M(s) the top-p set of π_ψ(·|s)
(``nlpo_mask.py``). The rollout source (``train/rollout_nlpo.py``) samples from π^m_θ and gives the engine
π_ψ with its LM head cut to that nucleus, so the engine's ``token_logps_ref_support`` is log π^m_θ on the
same support the sampler drew from; π_ψ is a copy of π_θ re-copied every ``update_every`` rollouts. This
objective is PPO's loss (``online_rl.ppo``: GAE, clipped policy and value losses, KL to π_ref in the reward)
with log π^m_θ in place of log π_θ. With ``top_p: 1`` every token is allowed and it is exactly ``ppo``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from alignlab.objectives.online_rl import NEEDS, ppo
from alignlab.objectives.registry import objective
from alignlab.objectives.rollouts import RolloutPlan, rollout_plan
from alignlab.objectives.views import RolloutBatch


@objective(
    "nlpo",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=(*NEEDS, "token_values", "token_logps_ref_support"),
    paper="Ramamurthy et al. 2022, Is Reinforcement Learning (Not) for Natural Language Processing? (RL4LMs, "
    "NLPO), arXiv 2210.01241",
)
def nlpo(
    batch: RolloutBatch,
    top_p: float = 0.9,
    update_every: int = 20,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    vf_coef: float = 0.1,
    cliprange_value: float = 0.2,
    gamma: float = 1.0,
    lam: float = 0.95,
    loss_aggregation: str = "token_mean",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO (``ppo``'s formula, defaults and checks) on log π^m_θ, the policy renormalised over the top-p
    nucleus of the masking policy π_ψ (see the module docstring). ``top_p`` = 0.9 and ``update_every`` (μ) = 20
    rollouts are RL4LMs' README defaults (``top_mask``, ``target_update_iterations``); the KL to π_ref goes in
    the reward (``online.kl``, default 0.05 k1, as ``ppo``). Checked: allenai/RL4LMs
    rl4lms/algorithms/common/maskable/logits_processor.py (learned_top_p mask), nlpo.py (mask model update
    schedule), via ``nlpo_mask.py``; the METHODS test (top_p = 1 is exactly ppo) in tests/train/test_online_nlpo.py.
    """
    masked = batch.items.token_logps_ref_support
    if masked is None:
        raise ValueError("nlpo needs the engine's token_logps_ref_support (the masking policy as reference)")
    items = batch.items.with_(token_logps=masked)
    return ppo(
        RolloutBatch(items, batch.rollout, batch.group_index, batch.weight),
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        vf_coef=vf_coef,
        cliprange_value=cliprange_value,
        gamma=gamma,
        lam=lam,
        loss_aggregation=loss_aggregation,
        normalisers=normalisers,
    )


@rollout_plan("nlpo")
def _nlpo_plan(params: dict[str, Any]) -> RolloutPlan:
    if not 0 < params["top_p"] <= 1:
        raise ValueError(f"nlpo: top_p must be in (0, 1], got {params['top_p']}")
    if params["update_every"] < 1:
        raise ValueError(f"nlpo: update_every must be >= 1, got {params['update_every']}")
    return RolloutPlan(
        "gae",
        {"gamma": params["gamma"], "lam": params["lam"]},
        kl_coef=0.05,
        kl_estimator="k1",
        needs_values=True,
        source="nlpo",
        source_params={"top_p": params["top_p"], "update_every": params["update_every"]},
    )
