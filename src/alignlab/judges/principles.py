"""Principle-conditioned reward models (SALMON): the principles are part of the reward model's input."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import Tensor

from alignlab.data.records import Record
from alignlab.data.reward_templates import render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge

PRINCIPLE_TEMPLATE = "Judge the response by these principles:\n{principles}\n\n{prompt}"


def with_principles(prompt: Prompt, principles: Sequence[str], template: str = PRINCIPLE_TEMPLATE) -> str:
    """The prompt the principle-following RM reads: the numbered principles, then the conversation."""
    listed = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(principles))
    return template.format(principles=listed, prompt=render_context(prompt))


def principle_records(
    records: Sequence[Record], principles: Sequence[str], template: str = PRINCIPLE_TEMPLATE
) -> list[Record]:
    """Training data for a principle-following RM: each pair's prompt with ``principles`` in front.

    Train these with ``bt`` (with the principles held fixed SALMON's loss is BT); the preference labels
    should come from a judge that applied the same principles.
    """
    return [dataclasses.replace(r, prompt=with_principles(r.prompt, principles, template)) for r in records]


@register_judge("salmon_principle_rm", paper="Sun et al. 2023 SALMON (arXiv 2310.05910)")
class PrincipleRewardJudge(Judge):
    """A reward model trained on principle-prefixed prompts, scoring under principles chosen at call time.

    r(x, y, P) = RM(with_principles(x, P), y); editing P at RL time (adding or negating principles)
    steers the reward without retraining. Checked against the METHODS block (paper recall).
    """

    def __init__(self, reward_model: Judge, principles: Sequence[str], template: str = PRINCIPLE_TEMPLATE):
        if not principles:
            raise ValueError("salmon_principle_rm needs at least one principle")
        self.reward_model, self.principles, self.template = reward_model, list(principles), template

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        conditioned = [with_principles(p, self.principles, self.template) for p in prompts]
        return self.reward_model.score(conditioned, completions)
