"""Fine-grained RLHF rewards: per-aspect segment classifiers combined into a dense reward at segment ends.

R_t = Σ_k w_k · r_k(x, y, j) · 1[t = end(j)]  (then minus the per-token KL in PPO, outside this module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from alignlab.data.segments import FINE_GRAINED_PAPER, segment_text
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge

PAPER = FINE_GRAINED_PAPER
VALUES = ("sign", "logit", "prob")


def dense_token_rewards(
    segment_end_tokens: Sequence[int], segment_values: np.ndarray, weights: Sequence[float], num_tokens: int
) -> np.ndarray:
    """R_t = Σ_k w_k · v[j, k] at t = end(j) (token index of segment j's last token), 0 elsewhere; [T]."""
    values = np.asarray(segment_values, dtype=float).reshape(len(segment_end_tokens), -1)
    w = np.asarray(weights, dtype=float)
    if values.shape[1] != w.shape[0]:
        raise ValueError(f"{values.shape[1]} aspects but {w.shape[0]} weights")
    rewards = np.zeros(num_tokens)
    for t, row in zip(segment_end_tokens, values):
        if not 0 <= t < num_tokens:
            raise ValueError(f"segment end token {t} is outside the response's {num_tokens} tokens")
        rewards[t] += float(row @ w)
    return rewards


@register_judge("fine_grained_rm", paper=PAPER)
class FineGrainedRewardJudge(Judge):
    """Dense multi-aspect reward: each aspect classifier scores every segment prefix; R_j = Σ_k w_k r_k(j).

    ``aspect_model``: a judge whose ``score(prompts, prefixes)`` gives ``[N, A]`` classifier logits (or
    ``[N]`` for one aspect) for "segment j has no error of aspect k", read at the end of the prefix
    y[:end(j)] — a reward model trained with the ``fine_grained_rm`` objective (num_attributes = A).
    ``value``: ``sign`` (+1 if the classifier says no error, −1 otherwise), ``logit`` or ``prob``.
    ``score`` = Σ_t R_t (the sequence total); ``dense_rewards`` gives the per-token vector.
    Unverified: the paper's per-aspect reward values (±1 per classified segment, recall) and weights w_k.
    """

    def __init__(
        self,
        aspect_model: Judge,
        weights: Mapping[str, float] | Sequence[float],
        aspects: Sequence[str] | None = None,
        value: str = "sign",
        segmentation: str = "sentence",
    ):
        if value not in VALUES:
            raise ValueError(f"fine_grained_rm value must be one of {VALUES}, got '{value}'")
        names = list(aspects or (weights.keys() if isinstance(weights, Mapping) else []))
        w = [weights[a] for a in names] if isinstance(weights, Mapping) else list(weights)
        if not w or (names and len(names) != len(w)):
            raise ValueError("fine_grained_rm needs one weight per aspect (a dict aspect → weight)")
        self.aspect_model, self.aspects, self.weights = aspect_model, names, np.asarray(w, dtype=float)
        self.value, self.segmentation = value, segmentation

    def segment_values(self, prompt: Prompt, completion: str) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The segments of ``completion`` and the [J, A] aspect values of each."""
        segments = segment_text(completion, self.segmentation)
        prefixes = [completion[:end] for _, end in segments]
        logits = self.aspect_model.score([prompt] * len(prefixes), prefixes).double().numpy()
        logits = logits.reshape(len(prefixes), -1)
        if logits.shape[1] != len(self.weights):
            raise ValueError(
                f"the aspect model gives {logits.shape[1]} outputs but {len(self.weights)} weights were set"
            )
        if self.value == "sign":
            return segments, np.where(logits > 0, 1.0, -1.0)
        if self.value == "prob":
            return segments, 1.0 / (1.0 + np.exp(-logits))
        return segments, logits

    def dense_rewards(self, prompt: Prompt, completion: str, tokenizer: Any) -> np.ndarray:
        """[T] reward per completion token (``tokenizer`` offsets locate each segment's last token)."""
        segments, values = self.segment_values(prompt, completion)
        offsets = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        ends = []
        for _, end in segments:
            inside = [t for t, (s, e) in enumerate(offsets) if s < end and e > s]
            ends.append(max(inside) if inside else len(offsets) - 1)
        return dense_token_rewards(ends, values, self.weights, len(offsets))

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        totals = [
            float((self.segment_values(p, c)[1] @ self.weights).sum()) for p, c in zip(prompts, completions)
        ]
        return torch.tensor(totals, dtype=torch.float32)
