"""Per-token rewards from a judge (Fine-Grained RLHF): ``judge.score_tokens(batch)`` gives one reward per
sampled completion token; the rollout source pads them to ``[G, K, T]`` and subtracts the per-token KL, and
GAE runs over them as over PPO's token rewards."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.data.prompts import PromptRow
from alignlab.generation.types import Rollout
from alignlab.train.rollout_judging import RolloutStopped, judge_batch


def judge_token_rewards(
    judge: Any, rows: list[PromptRow], rollouts: list[Rollout], n: int, step: int, where: str = "online.judge"
) -> list[Tensor]:
    """One float tensor per rollout with one reward per completion token, or :class:`RolloutStopped`."""
    name = getattr(judge, "name", type(judge).__name__)
    if not hasattr(judge, "score_tokens"):
        raise RolloutStopped(
            f"{where}: judge '{name}' gives one reward per completion, but this objective needs one per token "
            "(a judge with score_tokens, e.g. {name: token_reward_function, function: ...})"
        )
    values = judge.score_tokens(judge_batch(rows, rollouts, n, step))
    out = []
    for i, (rollout, value) in enumerate(zip(rollouts, values)):
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
        if t.numel() != len(rollout.completion_ids):
            raise RolloutStopped(
                f"{where}: judge '{name}' gave {t.numel()} token rewards for completion {i}, which has "
                f"{len(rollout.completion_ids)} tokens (EOS included when emitted); give one per token"
            )
        if not torch.isfinite(t).all():
            raise RolloutStopped(f"{where}: judge '{name}' gave a non-finite token reward for completion {i}")
        out.append(t)
    if len(out) != len(rollouts):
        raise RolloutStopped(f"{where}: judge '{name}' gave {len(out)} token-reward rows for {len(rollouts)}")
    return out


def pad_token_rewards(values: list[Tensor], shape: tuple[int, int, int]) -> Tensor:
    """``[G, K, T]`` with each completion's token rewards at its first positions, zero after."""
    g, k, t = shape
    out = torch.zeros(g * k, t)
    for i, v in enumerate(values):
        out[i, : min(len(v), t)] = v[:t]
    return out.reshape(g, k, t)
