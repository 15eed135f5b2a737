"""A Python function that gives one reward per completion token, as a judge (Fine-Grained RLHF's dense
rewards: segment-level reward models write their scores on each segment's last token).

    def segment_rewards(prompts, completions, completion_ids, **columns) -> list[list[float]]:
        ...  # for each completion, one number per sampled token id (EOS included when it was emitted)

It is called like ``reward_function`` (keyword arguments: prompts, completions, completion_ids, step and one
per record column). ``score_tokens`` returns the lists; ``score`` their sums (so it is also a scalar judge).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from alignlab.judges.base import Judge, JudgeBatch, Prompt
from alignlab.judges.registry import register_judge
from alignlab.judges.user_functions import accepts, call_arguments, load_function


@register_judge(
    "token_reward_function",
    paper="Wu et al. 2023, Fine-Grained Human Feedback Gives Better Rewards for Language Model Training, "
    "arXiv 2306.01693 (dense rewards at segment ends)",
)
class TokenRewardFunctionJudge(Judge):
    """A Python function (prompts, completions, completion_ids, step, **columns) → one reward per token."""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        function: str  # package.module:function or path/to/file.py:function
        name: str | None = None

    def __init__(self, fn: Callable[..., Sequence[Sequence[float]]], name: str | None = None):
        if not callable(fn):
            raise TypeError(f"TokenRewardFunctionJudge needs a function, got {type(fn).__name__}")
        self.fn, self.function_name = fn, name or getattr(fn, "__name__", "token_reward_function")
        self._accepts = accepts(fn)

    @classmethod
    def from_settings(
        cls, settings: Settings, where: str, context: dict[str, Any]
    ) -> TokenRewardFunctionJudge:
        return cls(load_function(settings.function, f"{where}.function"), settings.name)

    def score_tokens(self, batch: JudgeBatch) -> list[Tensor]:
        what = f"token reward function '{self.function_name}'"
        values = list(self.fn(**call_arguments(batch, self._accepts, what)))
        if len(values) != len(batch.completions):
            raise ValueError(
                f"token reward function '{self.function_name}' returned {len(values)} rows for "
                f"{len(batch.completions)} completions"
            )
        return [torch.as_tensor(list(v), dtype=torch.float32) for v in values]

    def score_batch(self, batch: JudgeBatch) -> Tensor:
        return torch.stack([t.sum() for t in self.score_tokens(batch)])

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        return self.score_batch(JudgeBatch(prompts, completions))
