"""Plain Python functions as judges: rules, checkers, heuristics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.judges.user_functions import load_function

RuleFn = Callable[[Prompt, str], "float | dict[str, float]"]


@register_judge("rule", paper="programmatic reward (e.g. verifiable answers, format checks)")
class RuleJudge(Judge):
    """A Python function f(prompt, completion) → float (or a dict of named floats) as a judge.

    judge = RuleJudge(lambda prompt, completion: float("42" in completion))
    judge = RuleJudge(lambda p, c: {"length": len(c), "polite": float("please" in c)},
                      attributes=["length", "polite"])

    A rule that returns named values declares their names (``attributes``): they are the judge's
    ``attribute_names`` and the columns of its ``[N, A]`` scores, in that order.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        function: str  # package.module:function or path/to/file.py:function, f(prompt, completion)
        name: str | None = None
        attributes: list[str] | None = None

    def __init__(self, fn: RuleFn, name: str | None = None, attributes: Sequence[str] | None = None):
        if not callable(fn):
            raise TypeError(
                f"RuleJudge needs a function (prompt, completion) -> float, got {type(fn).__name__}"
            )
        self.fn = fn
        self.rule_name = name or getattr(fn, "__name__", "rule")
        self.attribute_names = list(attributes) if attributes is not None else None

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> RuleJudge:
        fn = load_function(settings.function, f"{where}.function")
        return cls(fn, settings.name, settings.attributes)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        values = [self.fn(p, c) for p, c in zip(prompts, completions)]
        if values and any(isinstance(v, dict) for v in values):
            return self._named(values)
        if self.attribute_names is not None and values:
            raise ValueError(
                f"rule '{self.rule_name}' declares attributes {self.attribute_names} but returned a number; "
                "return a dict with those names"
            )
        try:
            return torch.tensor([float(v) for v in values], dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(f"rule '{self.rule_name}' must return a number or a dict of numbers") from None

    def _named(self, values: list) -> Tensor:
        names = self.attribute_names
        if names is None:
            raise ValueError(
                f"rule '{self.rule_name}' returned named values {sorted(values[0]) if isinstance(values[0], dict) else values[0]!r}; "
                "declare their names: RuleJudge(fn, attributes=[...]) (config: attributes: [...])"
            )
        for v in values:
            if not isinstance(v, dict) or set(v) != set(names):
                got = sorted(v) if isinstance(v, dict) else v
                raise ValueError(
                    f"rule '{self.rule_name}': every call must return the same names {names}, got {got!r}"
                )
        return torch.tensor([[float(v[n]) for n in names] for v in values], dtype=torch.float32)


def shorter_is_better(prompt: Prompt, completion: str) -> float:
    """A baseline rule: minus the completion's length in characters (prefers the shorter answer)."""
    return -float(len(completion))
