"""alignlab.generation: the one place that samples (see docs/generation.md).

sampler = build_sampler("hf", model, tokenizer)
rollouts = sampler.sample(prompts, SamplingParams(n=8, max_new_tokens=64, temperature=0.7, top_p=0.9))
"""

from alignlab.generation.registry import build_sampler, register_sampler, sampler_names
from alignlab.generation.types import Rollout, Sampler, SamplingParams

__all__ = ["Rollout", "Sampler", "SamplingParams", "build_sampler", "register_sampler", "sampler_names"]
