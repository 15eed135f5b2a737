"""Score rollouts on the ids they were sampled as: never re-tokenise sampled text.

A sample cut at ``max_new_tokens`` is scored without an EOS it never produced, and one that emitted EOS is
scored with it, exactly as sampled. ``score_rollouts`` runs the engine over each prompt's rollouts as one
group (the prompt computed once); ``support_logprobs`` puts the engine's temperature-T log-probs on the
sampler's filtered support (``generation/filters.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.generation.types import Rollout
from alignlab.models.parts import unwrap
from alignlab.scoring.engine import Engine
from alignlab.scoring.scores import Scores


def rollout_groups(rollouts: Sequence[Rollout]) -> tuple[list[Record], list[TokenizedGroup], list[int]]:
    """One record and tokenised group per prompt (its rollouts in order), and the flat completion index of
    each rollout in the groups' layout (so scores can be returned in the rollouts' order)."""
    by_prompt: dict[int, list[int]] = {}
    for i, rollout in enumerate(rollouts):
        by_prompt.setdefault(rollout.prompt_index, []).append(i)
    records, groups, order = [], [], []
    for g, (_, members) in enumerate(sorted(by_prompt.items())):
        prompt_ids = rollouts[members[0]].prompt_ids
        for i in members:
            if rollouts[i].prompt_ids != prompt_ids:
                raise ValueError(
                    f"rollouts {members[0]} and {i} share a prompt_index but not their prompt ids"
                )
            if not rollouts[i].completion_ids:
                raise ValueError(f"rollout {i} has no completion ids")
        records.append(Record("", [rollouts[i].text or " " for i in members], meta={}))
        groups.append(
            TokenizedGroup(
                prompt_ids=list(prompt_ids),
                completion_ids=[list(rollouts[i].completion_ids) for i in members],
                context_ids=[[] for _ in members],
                roles=["" for _ in members],
                record_index=g,
            )
        )
        order += members
    position = [0] * len(rollouts)
    for flat, i in enumerate(order):
        position[i] = flat
    return records, groups, position


@torch.no_grad()
def score_rollouts(
    model: Any,
    rollouts: Sequence[Rollout],
    needs: frozenset[str] = frozenset({"token_logps"}),
    temperature: float = 1.0,
    pad_id: int = 0,
    groups_per_batch: int = 16,
    engine: Engine | None = None,
) -> Scores:
    """The engine's Scores of ``model`` on the rollouts' exact ids, flat [N] in the rollouts' order.

    ``temperature``: score log softmax(z / T) (the sampler's temperature, so ratios start at 1); pass an
    ``engine`` to reuse its settings (its own temperature then applies).
    """
    records, groups, position = rollout_groups(rollouts)
    engine = engine or Engine(temperature=temperature)
    layout = engine.choose_layout(model)
    device = next(unwrap(model).parameters()).device
    was_training = model.training
    model.eval()
    parts: list[Scores] = []
    try:
        for start in range(0, len(groups), groups_per_batch):
            batch = make_batch(records, groups[start : start + groups_per_batch], layout, pad_id=pad_id)
            parts.append(engine(model, batch.to(device), needs).map(lambda t: t.detach().float().cpu()))
    finally:
        model.train(was_training)
    index = torch.tensor(position, dtype=torch.long)
    logps = torch.cat([p.logps for p in parts])[index]
    lengths = torch.cat([p.lengths for p in parts])[index]
    scores = Scores(logps=logps, lengths=lengths)
    if parts[0].token_logps is not None:
        width = max(p.token_logps.shape[1] for p in parts)
        pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
        scores.token_logps = torch.cat([pad(p.token_logps) for p in parts])[index]
        scores.token_mask = torch.cat([pad(p.token_mask) for p in parts])[index]
    return scores


def support_logprobs(token_logps: Tensor, rollouts: Sequence[Rollout]) -> Tensor:
    """Per-token log-probs [N, T] (temperature-T engine log-probs) moved onto each rollout's filtered support:
    ``token_logps − kept_logmass`` (unchanged where the rollout had no filter)."""
    out = token_logps.clone()
    for i, rollout in enumerate(rollouts):
        if rollout.meta.get("kept_logmass_recorded") is False:
            raise ValueError(
                f"rollout {i} was sampled with a top-k/top-p/min-p filter by a backend that does not report the "
                "kept mass (vllm); score its old log-probs with the engine instead of using the sampler's"
            )
        if rollout.kept_logmass is not None:
            mass = torch.tensor(rollout.kept_logmass, dtype=out.dtype, device=out.device)
            out[i, : mass.numel()] -= mass
    return out
