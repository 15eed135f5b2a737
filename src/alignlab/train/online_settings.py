"""The ``online:`` section of a run config: where prompts come from, how to sample, who judges, and how
rewards become advantages. Present only for online methods (grpo, ppo, rloo, ...).

    online:
      prompts: builtin:arithmetic          # or a JSONL file with a `prompt` field (+ columns for the judge)
      prompts_per_rollout: 8               # prompts sampled per refresh
      sampling: {n: 8, max_new_tokens: 16, temperature: 1.0}
      judge: {name: verifiable_answer}     # any judge spec build_judge accepts
      kl: {coef: 0.05, estimator: k1}      # KL in the reward (PPO's form); GRPO's is the objective's beta
      epochs_per_rollout: 1
      minibatches: 1

Settings left ``null`` take the method's choice (its rollout plan in ``objectives/online_rl.py``): GRPO's
advantage is the group-normalised reward with KL in the loss, PPO's is GAE with KL in the reward, and so
on. Every field is documented in docs/online.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alignlab.generation.types import SamplingParams


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplerSettings(_Strict):
    """Which sampler backend runs generation (``hf``: the KV-cache loop; ``vllm``: GPU, extra ``vllm``)."""

    backend: Literal["hf", "vllm"] = "hf"
    batch_size: int = Field(256, gt=0)  # sequences per generation batch
    options: dict[str, Any] = Field(
        default_factory=dict
    )  # backend-specific (e.g. vLLM's gpu_memory_utilization)


class AdaptiveKL(_Strict):
    """Ziegler et al.'s adaptive controller: β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon)."""

    target: float = Field(6.0, gt=0)
    horizon: int = Field(10000, gt=0)


class KLSettings(_Strict):
    """The KL penalty in the REWARD: every token's reward loses ``coef · k_t`` before advantages
    (PPO, REINFORCE++, RLOO's sequence penalty Σ_t k_t), k_t computed from the sampling policy's and the
    reference's log-probs of the sampled token. ``estimator``: k1 = log π/π_ref, k2 = ½(log π/π_ref)²,
    k3 = π_ref/π − log(π_ref/π) − 1. ``adaptive``: Ziegler et al.'s controller moves ``coef`` toward a target
    KL. KL in the LOSS (GRPO's form) is the objective's own ``beta`` / ``kl_estimator``.
    """

    coef: float = Field(0.0, ge=0)
    estimator: Literal["k1", "k2", "k3"] = "k1"
    adaptive: AdaptiveKL | None = None


class AdvantageSettings(_Strict):
    """The advantage estimator and its parameters (see ``alignlab.objectives.advantages``)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RewardShaping(_Strict):
    """What happens to the judge's rewards before advantages.

    ``missing_eos_penalty``: subtracted from the reward of a completion cut at ``max_new_tokens`` (TRL's
    option of the same name). ``normalize``: ``batch`` standardises rewards over the rollout, ``running``
    by a running mean/std (Secrets of RLHF's PPO-max), ``none``. ``clip``: then clip to ±clip.
    """

    missing_eos_penalty: float | None = Field(None, ge=0)
    normalize: Literal["none", "batch", "running"] = "none"
    clip: float | None = Field(None, gt=0)


class ReferenceUpdate(_Strict):
    """How the reference policy moves: ``frozen`` (the initial policy), ``ema`` (θ_ref ← (1−α)θ_ref + αθ
    after every refresh), or ``previous_iteration`` (θ_ref ← θ every ``every`` refreshes)."""

    mode: Literal["frozen", "ema", "previous_iteration"] = "frozen"
    alpha: float = Field(0.1, gt=0, le=1)
    every: int = Field(1, gt=0)


class OnlineSettings(_Strict):
    prompts: str = "builtin:arithmetic"
    prompts_limit: int | None = Field(None, gt=0)
    prompts_per_rollout: int = Field(8, gt=0)
    max_prompt_length: int = Field(512, gt=0)  # longer prompts are reported and skipped, never cut
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(n=4, max_new_tokens=32))
    judge: dict[str, Any] | str = Field(default_factory=lambda: {"name": "verifiable_answer"})
    advantage: AdvantageSettings | None = None  # null: the method's estimator
    kl: KLSettings | None = None  # null: the method's KL form
    reward: RewardShaping = Field(default_factory=RewardShaping)
    reference_update: ReferenceUpdate = Field(default_factory=ReferenceUpdate)
    epochs_per_rollout: int = Field(1, gt=0)
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
