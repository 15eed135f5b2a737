"""``fine_grained_rlhf`` (Wu et al. 2023, arXiv 2306.01693): PPO whose judge gives a reward per token.

The judge writes each segment's weighted reward-model scores on the segment's last token (a
``token_reward_function`` judge, or :func:`alignlab.objectives.fine_grained_rewards.segment_token_rewards`
inside one); the rollout source subtracts the per-token KL, r_t = Σ_k w_k Σ_j 1[t = end(j)]·R_k(j) −
β·(log π_old − log π_ref), and runs GAE over r_t; the update is PPO's. With one reward model and one
segment (the whole response) it is exactly ``ppo`` (a test).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from alignlab.objectives.online_rl import NEEDS, ppo
from alignlab.objectives.registry import objective
from alignlab.objectives.rollouts import RolloutPlan, rollout_plan
from alignlab.objectives.views import RolloutBatch


@objective(
    "fine_grained_rlhf",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=(*NEEDS, "token_values"),
    paper="Wu et al. 2023, Fine-Grained Human Feedback Gives Better Rewards for Language Model Training, "
    "arXiv 2306.01693",
)
def fine_grained_rlhf(
    batch: RolloutBatch,
    epsilon: float = 0.2,
    vf_coef: float = 0.1,
    cliprange_value: float = 0.2,
    gamma: float = 1.0,
    lam: float = 0.95,
    loss_aggregation: str = "token_mean",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO on dense token rewards: r_t = Σ_k w_k·Σ_j 1[t = end(j)]·R_k(x, y, j) − β·k1_t (``online.kl``,
    default 0.05), GAE(γ, λ) with a value head, token-level clip + c_v × clipped value loss.

    The judge must give one reward per completion token (``score_tokens``; e.g.
    ``{name: token_reward_function, function: my_rewards.py:segments}``); outcome reward shaping does not
    apply to dense rewards. Checked: allenai/FineGrainedRLHF ``kl_penalize_reward`` and fgrlhf/ppo.py (see
    ``fine_grained_rewards.py``); PPO as the ``ppo`` objective.
    """
    return ppo(
        batch, epsilon=epsilon, vf_coef=vf_coef, cliprange_value=cliprange_value, gamma=gamma, lam=lam,
        loss_aggregation=loss_aggregation, normalisers=normalisers,
    )  # fmt: skip


@rollout_plan("fine_grained_rlhf")
def _fine_grained_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan(
        "gae", {"gamma": params["gamma"], "lam": params["lam"]}, kl_coef=0.05, kl_estimator="k1",
        needs_values=True, token_rewards=True,
    )  # fmt: skip
