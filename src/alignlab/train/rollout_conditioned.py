"""A rollout source whose samples are drawn under one condition and trained under another, with a fixed
weight: C-RLFT's sub-optimal class (Wang et al. 2023, OpenChat).

Each prompt is encoded twice when the source starts: after ``sample_prefix`` (what the sampler reads: for
C-RLFT the expert tag, the condition the policy is deployed with) and after ``train_prefix`` (the class
the samples are trained as: the sub-optimal tag). A refresh is the ordinary one (sample, judge — the
judge's rewards are logged, not trained on —, serve); then each rollout record's prompt becomes
``train_prefix ⊕ prompt``, its weight ``weight`` (the class reward), and its group's prompt ids the
train-prefixed ids, so the loss scores log π(y | train_prefix ⊕ x). The prefix is put where
``record_rewrites.prefix_prompt`` puts it for the offline records (before a plain prompt, at the start of
a chat prompt's first message), so the rollout class and the fixed-data class are conditioned alike. The
no-grad pass of a refresh (old log-probs when a rollout is served more than once) scores the sampled
prompt; the objectives that use this source do not read it.
"""

from __future__ import annotations

from typing import Any

import torch

from alignlab.data.tokenize import encode_prompts
from alignlab.objectives.record_rewrites import prefix_prompt
from alignlab.train.rollout_source import RolloutSource


class ConditionedRolloutSource(RolloutSource):
    """See the module docstring; ``sample_prefix``, ``train_prefix`` and ``weight`` come from the plan."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        params = self.plan.source_params
        self.sample_prefix = str(params.get("sample_prefix", ""))
        self.train_prefix = str(params.get("train_prefix", ""))
        self.weight = float(params.get("weight", 1.0))
        self._chosen: list[int] = []

    def bind(self, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        super().bind(tokenizer, *args, **kwargs)  # rows kept within max_prompt_length (without a prefix)
        self.train_ids = self._encode_after(self.train_prefix)
        self.prompt_ids = self._encode_after(self.sample_prefix)  # what the sampler reads

    def _encode_after(self, prefix: str) -> list[list[int]]:
        prompts = [prefix_prompt(row.prompt, prefix) for row in self.rows]
        return [ids for ids, _ in encode_prompts(self.tokenizer, prompts)]

    def _next_prompts(self) -> list[int]:
        self._chosen = super()._next_prompts()
        return self._chosen

    @torch.no_grad()
    def refresh(self, step: int = 0) -> None:
        super().refresh(step)
        for record, group, row in zip(self.data.records, self.data.groups, self._chosen):
            record.prompt = prefix_prompt(self.rows[row].prompt, self.train_prefix)
            record.weight = self.weight
            group.prompt_ids = list(self.train_ids[row])
