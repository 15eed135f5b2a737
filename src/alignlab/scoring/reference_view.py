"""A batch as a model sees it without some of its prompt tokens: Quark's reference scores the prompt without
the policy's reward tag (GXimingLu/Quark ``main.py``, ``ConditionTrainer.loss``: the reference's forward pass
takes ``query_input_ids[:, 1:]``, the query without the prepended tag).

The hidden positions stay in the tensors, so every completion token is predicted at the same (row, column)
as in the policy's pass and the two sets of logits line up one to one; what changes:

- no other token attends to a hidden position (packed layout: it leaves its segment; separate layout: it
  becomes padding in the 2D mask),
- later positions of its segment move one place back (packed layout: explicit position ids), so the rest
  has exactly the positions it would have without the hidden token,
- its id becomes ``fill_id`` (the reference may not have the tag's row at all).

The separate layout passes no position ids: a RoPE model (llama, qwen2) sees the same relative positions,
one absolute-position model (gpt2) would see them one place later; the default packed layout is exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from alignlab.data.batching import Batch


def without_tokens(batch: Batch, ids: Sequence[int], fill_id: int = 0) -> Batch:
    """``batch`` with every prompt position holding one of ``ids`` hidden (see the module docstring)."""
    if not ids:
        return batch
    hidden = torch.isin(batch.input_ids, torch.tensor(list(ids), device=batch.input_ids.device))
    hidden &= batch.branch_ids == 0  # prompt positions only; a tag the policy wrote stays in its completion
    if not bool(hidden.any()):
        return batch
    if bool(hidden[batch.pred_rows, batch.pred_cols].any()):
        raise ValueError("a prompt is only a hidden control token: nothing is left to predict from")
    segments = batch.segment_ids.clone()
    positions = batch.position_ids.clone()
    for r, c in hidden.nonzero().tolist():
        later = (batch.segment_ids[r] == batch.segment_ids[r, c]) & (
            batch.position_ids[r] > batch.position_ids[r, c]
        )
        positions[r, later] -= 1
        segments[r, c] = -1
    return dataclasses.replace(
        batch,
        input_ids=batch.input_ids.masked_fill(hidden, fill_id),
        position_ids=positions,
        segment_ids=segments,
    )
