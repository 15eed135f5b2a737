"""The body's forward pass over a Batch's layout: the hidden states every score is computed from.

A packed batch runs with a block attention mask (``sdpa``), the same mask computed per segment
(``segment``), only its visible prompt and branch blocks (``branch``) or a FlexAttention BlockMask
(``flex``); a separate batch runs one row per completion with a padding mask. Only this module (and the engine that calls it) knows that layout: a causal LM's LM head
and a reward model's head are fed the hidden states it returns.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor

from alignlab.data.batching import Batch
from alignlab.models.parts import body_and_head, unwrap
from alignlab.scoring import branch_attention, flex

_COMPILED_BODIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(body: Any) -> Any:
    """``torch.compile`` of the model body, once per body; dynamic shapes, since every batch has its own."""
    compiled = _COMPILED_BODIES.get(body)
    if compiled is None:
        compiled = _COMPILED_BODIES[body] = torch.compile(body, dynamic=True)
    return compiled


def packed_attention_inputs(model: Any, batch: Batch, attention: str) -> dict[str, Any]:
    """The mask (and segment spans) a packed batch is run with under ``attention``: ``sdpa`` (dense 4D block
    mask), ``segment`` (the dense mask, attention computed per segment), ``branch`` (the visible blocks only,
    where that at least halves the pairs ``segment`` computes; else as ``segment``) or ``flex`` (BlockMask)."""
    if attention == "flex":
        flex.use_packed_attention(unwrap(model))
        return {"attention_mask": flex.packed_block_mask(batch.segment_ids, batch.branch_ids)}
    dtype = next(unwrap(model).parameters()).dtype
    if attention == "branch":
        plan = branch_attention.build_plan(batch.segment_ids, batch.branch_ids, _segment_path_pairs(batch))
        if plan.worthwhile():
            flex.use_packed_attention(unwrap(model))
            # the dense mask is built only if an attention call cannot take the plan (flex.py)
            plan.build_dense_mask = lambda: batch.attention_mask_4d(dtype)
            return {
                "attention_mask": flex.mask_placeholder(batch.input_ids.shape, dtype),
                flex.BRANCHES: plan,
            }
        attention = "segment"
    mask = batch.attention_mask_4d(dtype)
    if attention == "segment" and batch.input_ids.shape[1] >= flex.SEGMENT_MIN_ROW:
        flex.use_packed_attention(unwrap(model))
        return {"attention_mask": mask, "alignlab_segments": batch.segment_spans()}
    return {"attention_mask": mask}


def _segment_path_pairs(batch: Batch) -> int:
    """Query-key pairs the ``segment`` path computes for ``batch``: each row's square below
    ``SEGMENT_MIN_ROW`` columns (dense SDPA), else one square per computed block (``flex._attention_blocks``)."""
    rows, length = batch.input_ids.shape
    if length < flex.SEGMENT_MIN_ROW:
        return rows * length * length
    return sum((end - start) ** 2 for _, start, end in flex._attention_blocks(batch.segment_spans()))


def hidden_states(model: Any, batch: Batch, attention: str = "sdpa", compile: bool = False) -> Tensor:
    """Last hidden states [R, L, H]. ``attention`` (packed layout): see :func:`packed_attention_inputs`;
    ``compile``: run the body through ``torch.compile``."""
    body, _ = body_and_head(model)
    run = _compiled(body) if compile else body
    if batch.layout == "packed":
        inputs = packed_attention_inputs(model, batch, attention)
        out = run(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **inputs)
    else:
        out = run(input_ids=batch.input_ids, attention_mask=batch.padding_mask_2d(), use_cache=False)
    return out[0]


def pooled_hidden_states(model: Any, batch: Batch, attention: str = "sdpa") -> Tensor:
    """A reward model's (``models/reward.py``) pooled hidden state [N, H] for every completion of ``batch``.

    Pooling: ``last`` (the completion's last token; packed or separate layout), ``mean`` (the row's real
    tokens) or ``cls`` (the row's first token); the last two need the separate layout (one row per
    completion), as do encoder bodies, which would let packed completions see each other.
    """
    base = unwrap(model)
    body = base.backbone
    limit = getattr(body.config, "max_position_embeddings", None)
    if limit is not None and int(batch.position_ids.max()) >= limit:
        raise ValueError(
            f"an input has {int(batch.position_ids.max()) + 1} tokens but the {body.config.model_type} body "
            f"takes at most {limit}; set data.max_length: {limit} (and data.max_prompt_length below it)"
        )
    if batch.layout == "packed":
        if not base.supports_packed():
            raise ValueError(
                f"a reward model with {'an encoder body' if base.is_encoder else 'pooling ' + base.pooling} "
                "cannot use the packed layout; set train.layout: separate (or auto)"
            )
        inputs = packed_attention_inputs(body, batch, attention)
        out = body(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **inputs)
    else:
        kwargs = {} if base.is_encoder else {"use_cache": False}
        out = body(input_ids=batch.input_ids, attention_mask=batch.padding_mask_2d(), **kwargs)
    hidden = out[0]
    if base.pooling == "last":
        return hidden[batch.last_rows, batch.last_cols]
    rows = batch.last_rows  # separate layout: one row per completion
    if base.pooling == "cls":
        return hidden[rows, 0]
    mask = (batch.segment_ids[rows] >= 0).to(hidden.dtype)[..., None]
    return (hidden[rows] * mask).sum(1) / mask.sum(1).clamp(min=1)
