"""The parts of a model under its wrappers: the Hugging Face model, its body and its output head.

Training wraps a model (accelerate's DDP ``module``, PEFT's ``get_base_model``); the engine, the
reference cache, checkpoints, judges and evaluation all need what is underneath, so they share these.
"""

from __future__ import annotations

from typing import Any


def unwrap(model: Any) -> Any:
    """The Hugging Face model under accelerate/DDP and PEFT wrappers."""
    model = getattr(model, "module", model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def is_reward_model(model: Any) -> bool:
    """Whether ``model`` is an alignlab RewardModel (a body + reward head, no LM head)."""
    return bool(getattr(unwrap(model), "is_alignlab_reward_model", False))


def body_and_head(model: Any) -> tuple[Any, Any]:
    """A causal LM's transformer body (``base_model_prefix``) and its LM head (output embeddings)."""
    base = unwrap(model)
    body = getattr(base, base.base_model_prefix, None)
    if body is None:
        raise TypeError(f"{type(base).__name__} has no '{base.base_model_prefix}' body; is it a causal LM?")
    return body, base.get_output_embeddings()
