"""A saved policy for evaluation: loaded from a run directory (its ``model/``), a checkpoint or ``tiny:ARCH``,
and sampled once per prompt (the policy's outputs, a judge model's replies)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_policy(path: str) -> tuple[Any, Any]:
    """(causal LM for inference, tokenizer) from a run directory's model/, a checkpoint or a model name."""
    from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

    p = Path(path)
    if (p / "model").is_dir():
        p = p / "model"
    settings = ModelSettings(path=str(p) if p.exists() else path, kind="causal_lm")
    return load_causal_lm(settings, for_training=False), load_tokenizer(settings)


def sample_once(
    model_path: str,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    backend: str = "hf",
) -> list[str]:
    """One completion per prompt (text or chat messages) from the saved model, in prompt order."""
    from alignlab.generation import SamplingParams, build_sampler

    model, tokenizer = load_policy(model_path)
    sampler = build_sampler(backend, model, tokenizer)
    params = SamplingParams(n=1, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    texts = [""] * len(prompts)
    for rollout in sampler.sample(list(prompts), params):
        texts[rollout.prompt_index] = rollout.text
    return texts
