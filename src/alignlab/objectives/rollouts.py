"""What online (RL) objectives receive and declare: the rollout view of a batch and the rollout plan.

The rollout source (``train/rollout_source.py``) samples, judges and scores completions once per refresh
and stores per-completion tensors with them (``Feedback.rollout``): the sampling policy's per-token
log-probs (``old_logps``), the reference's (``ref_logps``), the advantages, returns, old values and
``length_norm`` (the constant L_max of ``seq_mean_token_sum_norm``). An online objective consumes
``feedback="rollouts"`` and gets a :class:`RolloutBatch`: the current policy's Scores (with gradient)
aligned with those tensors.

A :class:`RolloutPlan` is what an online objective asks of the rollout source: which advantage estimator,
the default KL in the reward, whether it needs reference log-probs, a critic's values or a greedy
baseline. Methods register theirs with :func:`rollout_plan`; ``online:`` settings may override parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.scoring.scores import Scores


@dataclass
class RolloutBatch:
    items: Scores  # [N] the current policy's scores: token_logps [N, T] with gradient, token_mask
    rollout: dict[str, Tensor]  # [N] or [N, T] tensors stored when the rollout was sampled
    group_index: Tensor  # [N] the prompt each completion answers
    weight: Tensor  # [N] per-completion weight (the record's)

    @property
    def size(self) -> int:
        return int(self.items.logps.shape[0])

    @property
    def mask(self) -> Tensor:
        return self.items.token_mask

    def get(self, name: str) -> Tensor:
        if name not in self.rollout:
            raise ValueError(
                f"the rollout has no '{name}' tensor (it has {sorted(self.rollout)}); an online objective "
                "must run on rollouts from `online:` (alignlab train with an online section)"
            )
        return self.rollout[name]


def rollout_view(scores: Scores, feedback: Feedback) -> RolloutBatch:
    if not feedback.rollout:
        from alignlab.objectives.views import FeedbackMismatch

        raise FeedbackMismatch(
            "this objective learns from rollouts sampled during training: add an `online:` section "
            "(prompts, sampling, judge) to the run config; see docs/online.md"
        )
    weight = feedback.weight[feedback.group_index].to(scores.logps.dtype)
    return RolloutBatch(scores, feedback.rollout, feedback.group_index, weight)


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
    """The rollout plan of objective ``name`` with ``params``, or None for an offline objective."""
    import alignlab.objectives  # noqa: F401  (registers every objective and plan)

    fn = _PLANS.get(name)
    return fn(params) if fn is not None else None
