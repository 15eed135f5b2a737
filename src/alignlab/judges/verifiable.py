"""Verifiable-answer rewards: a completion is right when its answer equals the row's ``answer`` column.

The checkable tasks of online training (``builtin:arithmetic``, ``builtin:arithmetic2``,
``builtin:sorting`` in :mod:`alignlab.data.prompts`, or any prompt file with an ``answer`` column) are
judged by this rule, which reads the column through the trainer's ``JudgeBatch``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.judges.base import Judge, Prompt
from alignlab.judges.registry import register_judge

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
MATCHES = ("first_number", "last_number", "numbers", "exact")


def extract(text: str, match: str) -> str | None:
    """The answer a text gives under ``match``: its first or last number, all its numbers, or its stripped
    text (None when it gives none)."""
    if match == "first_number":
        found = _NUMBER.search(text)
        return _canonical(found.group()) if found else None
    if match == "last_number":
        numbers = _NUMBER.findall(text)
        return _canonical(numbers[-1]) if numbers else None
    if match == "numbers":
        numbers = _NUMBER.findall(text)
        return " ".join(_canonical(n) for n in numbers) if numbers else None
    if match == "exact":
        return " ".join(text.split())
    raise ValueError(f"match must be one of {MATCHES}, got '{match}'")


def _canonical(number: str) -> str:
    value = float(number)
    return str(int(value)) if value.is_integer() else str(value)


@register_judge("verifiable_answer", paper="rule reward on a checkable answer (DeepSeekMath / RLVR style)")
class VerifiableAnswerJudge(Judge):
    """1 when the completion's answer equals the row's ``answer`` column, else 0 (``format_reward`` when a
    well-formed but wrong answer is given).

    ``match``: ``first_number`` (the first number in the completion, e.g. arithmetic), ``last_number``
    (the last one: chatty answers such as "3 + 4 = 7"), ``numbers`` (the
    sequence of every number, e.g. sorting) or ``exact`` (whitespace-normalised text). The answer is read
    from ``column`` of the prompt's row (``JudgeBatch.columns``), so prompts need such a column.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        match: str = Field("first_number", pattern="^(first_number|last_number|numbers|exact)$")
        column: str = "answer"
        format_reward: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> VerifiableAnswerJudge:
        return cls(settings.match, settings.column, settings.format_reward)

    def __init__(self, match: str = "first_number", column: str = "answer", format_reward: float = 0.0):
        if match not in MATCHES:
            raise ValueError(f"verifiable_answer: match must be one of {MATCHES}, got '{match}'")
        self.match, self.column, self.format_reward = match, column, float(format_reward)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        raise ValueError(
            f"verifiable_answer needs each prompt's '{self.column}' column: it scores through "
            "score_batch(JudgeBatch(..., columns={'" + self.column + "': [...]}))"
        )

    def score_batch(self, batch: Any) -> Tensor:
        answers = batch.columns.get(self.column)
        if answers is None:
            raise ValueError(
                f"verifiable_answer: the prompts have no '{self.column}' column (they have: "
                f"{sorted(batch.columns) or 'none'}); add it to the prompt rows or set the judge's column"
            )
        return torch.tensor(
            [self.reward(c, str(a)) for c, a in zip(batch.completions, answers)], dtype=torch.float32
        )

    def reward(self, completion: str, answer: str) -> float:
        given = extract(completion, self.match)
        if given is None:
            return 0.0
        return 1.0 if given == extract(answer, self.match) else self.format_reward
