"""Sampler backends by name: ``build_sampler("hf" | "vllm", model, tokenizer, **options)``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from alignlab.generation.types import Sampler

SamplerFactory = Callable[..., Sampler]
_BACKENDS: dict[str, SamplerFactory] = {}


def register_sampler(name: str) -> Callable[[SamplerFactory], SamplerFactory]:
    def add(factory: SamplerFactory) -> SamplerFactory:
        if name in _BACKENDS:
            raise ValueError(f"sampler backend '{name}' is registered twice")
        _BACKENDS[name] = factory
        return factory

    return add


def sampler_names() -> list[str]:
    return sorted(_BACKENDS)


def build_sampler(name: str, model: Any, tokenizer: Any, **options: Any) -> Sampler:
    """The sampler ``name`` over ``model``/``tokenizer``; ``options`` go to the backend (hf: ``batch_size``;
    vllm: ``gpu_memory_utilization``, ``engine`` …, see docs/generation.md)."""
    if name not in _BACKENDS:
        close = difflib.get_close_matches(name, _BACKENDS, n=2)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise ValueError(
            f"unknown sampler backend '{name}'{hint}; the backends are: {', '.join(sampler_names())}"
        )
    return _BACKENDS[name](model, tokenizer, **options)


@register_sampler("hf")
def _hf(model: Any, tokenizer: Any, **options: Any) -> Sampler:
    from alignlab.generation.hf import HFSampler

    return HFSampler(model, tokenizer, **options)


@register_sampler("vllm")
def _vllm(model: Any, tokenizer: Any, **options: Any) -> Sampler:
    from alignlab.generation.vllm_backend import VLLMSampler

    return VLLMSampler(model, tokenizer, **options)
