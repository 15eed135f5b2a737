"""The ``online:`` section of a run config (online training: prompts, sampler, judge, how rewards become
advantages, how the reference moves); present only for online methods. Owned by the train layer, whose
rollout source reads it; composed by ``train/config.py``, re-exported by ``alignlab.config``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from alignlab.generation.types import SamplingParams
from alignlab.train.settings import Strict

# ---------------------------------------------------------------------------------------------- online
# The ``online:`` section (online training: prompts, sampler, judge, how rewards become advantages); present
# only for online methods (grpo, ppo, rloo, ...). Settings left ``null`` take the method's choice (its
# rollout plan in ``objectives/online_rl.py``). Every field is documented in docs/online.md.


class SamplerSettings(Strict):
    """Which sampler backend runs generation (``hf``: the KV-cache loop; ``vllm``: GPU, extra ``vllm``)."""

    backend: Literal["hf", "vllm"] = "hf"
    batch_size: int = Field(256, gt=0)  # sequences per generation batch
    options: dict[str, Any] = Field(
        default_factory=dict
    )  # backend-specific (e.g. vLLM's gpu_memory_utilization)


class AdaptiveKL(Strict):
    """Ziegler et al.'s adaptive controller: β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon)."""

    target: float = Field(6.0, gt=0)
    horizon: int = Field(10000, gt=0)


class KLSettings(Strict):
    """The KL penalty in the REWARD: every token's reward loses ``coef · k_t`` before advantages
    (PPO, REINFORCE++, RLOO's sequence penalty Σ_t k_t), k_t computed from the sampling policy's and the
    reference's log-probs of the sampled token. ``estimator``: k1 = log π/π_ref, k2 = ½(log π/π_ref)²,
    k3 = π_ref/π − log(π_ref/π) − 1. ``adaptive``: Ziegler et al.'s controller moves ``coef`` toward a target
    KL. KL in the LOSS (GRPO's form) is the objective's own ``kl_coef`` / ``kl_estimator``.
    """

    coef: float = Field(0.0, ge=0)
    estimator: Literal["k1", "k2", "k3"] = "k1"
    adaptive: AdaptiveKL | None = None


class AdvantageSettings(Strict):
    """The advantage estimator and its parameters (see ``alignlab.objectives.advantages``)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RewardShaping(Strict):
    """What happens to the judge's rewards before advantages.

    ``missing_eos_penalty``: subtracted from the reward of a completion cut at ``max_new_tokens`` (TRL's
    option of the same name). ``normalize``: ``batch`` standardises rewards over the rollout, ``running``
    by a running mean/std (Secrets of RLHF's PPO-max), ``none``. ``clip``: then clip to ±clip.
    """

    missing_eos_penalty: float | None = Field(None, ge=0)
    normalize: Literal["none", "batch", "running"] = "none"
    clip: float | None = Field(None, gt=0)


class ReferenceUpdate(Strict):
    """How the reference policy moves: ``frozen`` (the initial policy), ``ema`` (θ_ref ← (1−α)θ_ref + αθ
    after every refresh), or ``previous_iteration`` (θ_ref ← θ every ``every`` refreshes)."""

    mode: Literal["frozen", "ema", "previous_iteration"] = "frozen"
    alpha: float = Field(0.1, gt=0, le=1)
    every: int = Field(1, gt=0)


class OnlineSettings(Strict):
    prompts: str = "builtin:arithmetic"
    prompts_limit: int | None = Field(None, gt=0)
    prompts_per_rollout: int = Field(8, gt=0)
    max_prompt_length: int = Field(512, gt=0)  # longer prompts are reported and skipped, never cut
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(n=4, max_new_tokens=32))
    judge: dict[str, Any] | str = Field(default_factory=lambda: {"name": "verifiable_answer"})
    # A simulated world (alignlab.sim WorldConfig settings) for judges that annotate one (``simulated``);
    # ``prompts: sim:text-world`` implies its world.
    world: dict[str, Any] | None = None
    advantage: AdvantageSettings | None = None  # null: the method's estimator
    kl: KLSettings | None = None  # null: the method's KL form
    reward: RewardShaping = Field(default_factory=RewardShaping)
    reference_update: ReferenceUpdate = Field(default_factory=ReferenceUpdate)
    epochs_per_rollout: int = Field(1, gt=0)
    # groups of ``data.train`` added to every step beside the rollout minibatch (methods that mix fixed data
    # with their rollouts: c_rlft's expert class); 0: none
    offline_per_step: int = Field(0, ge=0)
    minibatches: int = Field(1, gt=0)
    loss_aggregation: (
        Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"] | None
    ) = None  # null: the method's
    log_samples_every: int = Field(10, ge=0)  # print sample completions every N refreshes (0: never)
    max_no_eos_fraction: float = Field(0.9, ge=0, le=1)  # flag a sampler that rarely emits EOS

    @model_validator(mode="after")
    def _minibatches_divide(self) -> OnlineSettings:
        if self.prompts_per_rollout % self.minibatches:
            raise ValueError(
                f"online.minibatches ({self.minibatches}) must divide online.prompts_per_rollout "
                f"({self.prompts_per_rollout}): each minibatch takes whole groups of samples"
            )
        return self

    @property
    def steps_per_rollout(self) -> int:
        return self.epochs_per_rollout * self.minibatches
