"""What online (RL) objectives declare: the rollout plan (what they receive, a ``RolloutBatch``, is in
``views.py``).

A :class:`RolloutPlan` is what an online objective asks of the rollout source: which advantage estimator,
the default KL in the reward, whether it needs reference log-probs, a critic's values or a greedy
baseline. Methods register theirs with :func:`rollout_plan`; ``online:`` settings may override parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RolloutPlan:
    """What an online objective needs from the rollout source (see the module docstring)."""

    advantage: str  # a name in alignlab.objectives.advantages.ADVANTAGES
    advantage_params: dict[str, Any] = field(default_factory=dict)
    kl_coef: float = 0.0  # default KL-in-the-reward coefficient (online.kl overrides)
    kl_estimator: str = "k1"
    needs_reference: bool = False  # the loss reads ref_logps (KL in the loss)
    needs_values: bool = False  # a critic: old values and returns (PPO)
    greedy_baseline: bool = False  # also decode greedily and judge it (ReMax)
    min_samples: int = 1  # completions per prompt the estimator needs
    token_rewards: bool = False  # the judge gives one reward per completion token (score_tokens)
    # which rollout source serves the method: "rollouts" (sample, judge, advantages) or "quark_pool" (Quark's
    # data pool of every past sample, re-ranked into reward quantiles); its settings in source_params
    source: str = "rollouts"
    source_params: dict[str, Any] = field(default_factory=dict)
    # "ratings": an offline objective trained on rollouts (copg, a_lol). Each rollout record carries the judge's
    # rewards as its ``scores`` ({"reward": r}) and a ranking by reward (ties in sample order), so the
    # objective's own view (pairs, scores) is built from them; such an objective also trains offline.
    records: str = ""
    # the method also trains on fixed data (``data.train``, prepared by its own ``prepare`` hook) beside the
    # rollouts: each step adds ``online.offline_per_step`` of its groups to the rollout minibatch (c_rlft)
    mixes_offline: bool = False


PlanFn = Callable[[dict[str, Any]], RolloutPlan]
_PLANS: dict[str, PlanFn] = {}


def rollout_plan(name: str) -> Callable[[PlanFn], PlanFn]:
    """Register the rollout plan of the online objective ``name``: a function of its hyper-parameters."""

    def register(fn: PlanFn) -> PlanFn:
        if name in _PLANS:
            raise ValueError(f"rollout plan '{name}' is registered twice")
        _PLANS[name] = fn
        return fn

    return register


def plan_for(name: str, params: dict[str, Any]) -> RolloutPlan | None:
    """The rollout plan of objective ``name`` with ``params``, or None for an offline objective (the
    objective catalog, which registers the plans, is loaded by whoever built the objective)."""
    fn = _PLANS.get(name)
    return fn(params) if fn is not None else None
