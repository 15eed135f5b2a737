"""The generation subsystem's types: what a sampler is asked (``SamplingParams``), what it returns
(``Rollout``), and the ``Sampler`` protocol every backend implements.

A ``Rollout`` keeps the completion ids exactly as sampled (EOS kept when it was emitted) and the sampler's
per-token log-probs on the support the trainer scores (temperature applied, the top-k/top-p/min-p mask
recorded), so nothing downstream re-tokenises sampled text and importance ratios start at exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class SamplingParams(BaseModel):
    """How to sample: ``n`` completions per prompt of at most ``max_new_tokens`` tokens.

    ``temperature = 0`` is greedy (then all n samples are equal). ``top_k = 0``, ``top_p = 1`` and
    ``min_p = 0`` switch the corresponding filter off. ``stop_token_ids`` end a completion like EOS (the
    stop token is kept in the completion ids). ``seed`` makes sampling reproducible. ``ignore_eos``: neither
    EOS nor the stop ids end a sample, so every sample has exactly ``max_new_tokens`` tokens (for
    benchmarks with forced lengths; the tokens are still drawn from the same distribution).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(1, gt=0)
    max_new_tokens: int = Field(64, gt=0)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    min_p: float = Field(0.0, ge=0.0, lt=1.0)
    stop_token_ids: tuple[int, ...] = ()
    seed: int = 0
    ignore_eos: bool = False


@dataclass
class Rollout:
    """One sampled completion of one prompt.

    ``logprobs[t]`` is log π_sampler(completion_ids[t] | prompt, completion_ids[:t]) on the filtered,
    temperature-scaled distribution the token was drawn from. ``finished`` is True when the completion
    ended with EOS or a stop token (which is then the last id), False when it was cut at
    ``max_new_tokens``. ``prompt_index`` is the prompt's position in the ``sample`` call; ``sample_index``
    is 0..n-1 within that prompt.

    ``kept_logmass[t]`` records the support: log of the probability mass, under the temperature-scaled
    distribution softmax(z_t / T), of the tokens the top-k/top-p/min-p filters kept at step t (≤ 0).
    None means no filter was on (all zeros). So ``logprobs[t] = log softmax(z_t / T)[y_t] − kept_logmass[t]``,
    and the trainer scores on the same support with the engine at temperature T (``Engine(temperature=T)``)
    minus ``kept_logmass`` (``alignlab.generation.scoring.support_logprobs``): at the sampler's weights the
    two agree, so importance ratios start at exactly 1. ``meta`` holds the sampler's name and the
    temperature/top_k/top_p/min_p the rollout was drawn with.
    """

    prompt_index: int
    sample_index: int
    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    finished: bool
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    kept_logmass: list[float] | None = None


@runtime_checkable
class Sampler(Protocol):
    """A backend that samples completions: ``hf`` (KV-cache loop) or ``vllm``.

    ``sample`` returns ``len(prompts) * params.n`` rollouts, grouped by prompt in order (prompt 0's n
    samples first). ``sync`` copies the policy's current weights into the sampler (a no-op when the
    sampler samples from the policy module itself).
    """

    def sample(self, prompts: list[Any], params: SamplingParams) -> list[Rollout]: ...

    def sync(self, policy: Any) -> None: ...
