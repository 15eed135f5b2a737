"""A Python function of a whole batch as a judge, with the signature of TRL's reward functions.

    def accuracy(prompts, completions, completion_ids, solution, step, **kwargs) -> list[float]:
        return [float(c.strip() == s) for c, s in zip(completions, solution)]

The function is called with keyword arguments: ``prompts``, ``completions`` (text), ``completion_ids``
(the sampled token ids, or None for text-only completions), ``step`` (the optimiser step, or None), and
one argument per other column of the records (``solution`` above), each a list with one value per
completion. A function with ``**kwargs`` receives every argument; one without receives only those it
names (so ``def f(completions)`` works). It returns one number per completion; ``None`` marks a
completion the function does not score (it becomes NaN, as in TRL).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from alignlab.judges.base import Judge, JudgeBatch, Prompt
from alignlab.judges.registry import register_judge
from alignlab.judges.user_functions import accepts, call_arguments, load_function

# The arguments every call receives; a record column may not take one of these names.
RESERVED = ("prompts", "completions", "completion_ids", "step")


@register_judge("reward_function", paper="programmatic reward over a batch (TRL's reward_funcs signature)")
class RewardFunctionJudge(Judge):
    """A Python function (prompts, completions, completion_ids, step, **columns) → one reward per completion."""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        function: str  # package.module:function or path/to/file.py:function
        name: str | None = None  # shown in metrics; default: the function's name

    def __init__(self, fn: Callable[..., Sequence[float | None]], name: str | None = None):
        if not callable(fn):
            raise TypeError(f"RewardFunctionJudge needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.function_name = name or getattr(fn, "__name__", "reward_function")
        self._accepts = accepts(fn)

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> RewardFunctionJudge:
        return cls(load_function(settings.function, f"{where}.function"), settings.name)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        return self.score_batch(JudgeBatch(prompts, completions))

    def score_batch(self, batch: JudgeBatch) -> Tensor:
        clash = sorted(set(batch.columns) & set(RESERVED))
        if clash:
            raise ValueError(
                f"reward function '{self.function_name}': record column(s) {clash} clash with the arguments "
                f"every call receives {list(RESERVED)}; rename the column(s)"
            )
        values = self.fn(**call_arguments(batch, self._accepts, f"reward function '{self.function_name}'"))
        try:
            values = list(values)
        except TypeError:
            raise ValueError(
                f"reward function '{self.function_name}' must return a list of numbers, got {type(values).__name__}"
            ) from None
        if len(values) != len(batch.completions):
            raise ValueError(
                f"reward function '{self.function_name}' returned {len(values)} values for "
                f"{len(batch.completions)} completions"
            )
        try:
            return torch.tensor([math.nan if v is None else float(v) for v in values], dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(
                f"reward function '{self.function_name}' must return numbers (or None), got {values[:3]!r}…"
            ) from None
