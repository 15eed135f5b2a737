"""Branch attention for the packed layout: only the query-key pairs the block mask lets through are computed.

A packed segment is a prompt followed by K branches (``data/batching.py``): a prompt token sees the earlier
prompt tokens, a branch token sees the whole prompt and the earlier tokens of its own branch. SDPA with the
dense ``[L, L]`` mask computes all L² pairs of a row; a GRPO group of a 17-token prompt and 8 branches of 32
tokens (L = 273) has 74.5k pairs of which 8.6k are visible. Here the visible pairs are gathered into small
dense blocks:

- **prompt blocks**, one per segment: queries = its prompt tokens, keys = the same tokens (causal);
- **branch blocks**, one per branch: queries = the branch's tokens, keys = its segment's prompt tokens followed
  by the branch's own tokens.

Blocks are padded to the longest prompt / branch of the batch and batched, so a layer's attention is two
``softmax(Q Kᵀ · scale + M) V`` over ``[blocks, heads, queries, keys]`` (``torch.baddbmm`` / ``torch.bmm``:
for blocks this small one fused SDPA call per block batch cost more, docs/performance.md), whatever the
number of segments and rows. ``M`` is 0 where the rule of ``Batch.attention_mask_4d`` lets query q see key
k — both in the segment, k's column ≤ q's, k in the prompt or in q's branch — and the dtype's minimum
elsewhere, as in the dense mask, so the result equals SDPA with that mask up to float summation order
(``tests/scoring/test_branch_attention.py``: values and gradients, varied branch lengths, padding, several
segments per row, grouped-query heads). A position in no block (row padding, a hidden prompt token of a
reference view) gets output 0, which nothing reads.

The plan (gather indices, masks) is built once per forward pass from the batch's segment and branch ids and
shared by every layer. :func:`worthwhile` says whether it computes at most ``MAX_PAIR_SHARE`` of the pairs
the segment path would (one dense square per row shorter than ``SEGMENT_MIN_ROW``, one per segment
otherwise); the engine uses the segment path when it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

# Branch attention is used when it computes at most this share of the segment path's query-key pairs. One
# layer's attention, fwd+bwd, 1 thread (docs/performance.md): a 17-token prompt + 8 x 32 (share 0.15) 5.1 ->
# 1.8 ms; a 126-token prompt + 8 x 32 (share 0.38) 8.5 -> 5.5 ms; the gathers cost a few calls more than SDPA.
MAX_PAIR_SHARE = 0.5


@dataclass
class _Blocks:
    """One batch of blocks: ``queries`` [n, Tq] and ``keys`` [n, Tk] flat positions (row·L + column; padding
    slots point at position 0), ``valid`` [n, Tq] real query slots, ``allowed`` [n, Tq, Tk] visibility."""

    queries: Tensor
    keys: Tensor
    valid: Tensor
    allowed: Tensor
    masks: dict[tuple[Any, ...], Tensor] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return self.allowed.numel()

    def additive_mask(self, dtype: torch.dtype, kv_heads: int, groups: int) -> Tensor:
        """[kv_heads·n, groups·Tq, Tk]: 0 where visible, the dtype's minimum elsewhere; built once per layout."""
        key = (dtype, kv_heads, groups)
        if key not in self.masks:
            n, tq, tk = self.allowed.shape
            mask = torch.zeros(self.allowed.shape, dtype=dtype, device=self.allowed.device)
            mask.masked_fill_(~self.allowed, torch.finfo(dtype).min)
            mask = mask[None, :, None].expand(kv_heads, n, groups, tq, tk)
            self.masks[key] = mask.reshape(kv_heads * n, groups * tq, tk).contiguous()
        return self.masks[key]


@dataclass
class BranchPlan:
    """Where every block's queries and keys are in the flattened ``[R·L]`` positions, and back."""

    rows: int
    length: int
    blocks: list[_Blocks]
    # for each flat position: its slot in the concatenated block queries, or the extra zero slot at the end
    inverse: Tensor
    dense_pairs: int  # what the segment path computes (flex.py: _attention_blocks)
    # builds the batch's dense [R, 1, L, L] mask, for an attention call that cannot take the plan (flex.py)
    build_dense_mask: Callable[[], Tensor] | None = None
    _dense: Tensor | None = field(default=None, repr=False)

    @property
    def pairs(self) -> int:
        return sum(b.pairs for b in self.blocks)

    def worthwhile(self) -> bool:
        return self.pairs <= MAX_PAIR_SHARE * self.dense_pairs

    def dense_mask(self) -> Tensor:
        """The dense mask (built once), for a call that falls back to SDPA."""
        if self._dense is None:
            if self.build_dense_mask is None:
                raise RuntimeError("this branch plan has no dense mask to fall back to")
            self._dense = self.build_dense_mask()
        return self._dense


def build_plan(segment_ids: Tensor, branch_ids: Tensor, dense_pairs: int) -> BranchPlan:
    """The plan for a packed batch's ``[R, L]`` segment ids (-1: in no segment) and branch ids (0: prompt)."""
    rows, length = segment_ids.shape
    device = segment_ids.device
    seg, branch = segment_ids.reshape(-1), branch_ids.reshape(-1)
    real = torch.nonzero(seg >= 0).flatten()  # flat positions in column order within each row
    if not len(real):
        raise ValueError("a packed batch with no tokens has nothing to attend to")
    row = real // length
    # one id per (row, segment) and per (row, segment, branch), in order of first appearance
    seg_key = row * (int(seg.max()) + 1) + seg[real]
    seg_ids, seg_of = torch.unique(seg_key, return_inverse=True)
    branches = int(branch[real].max()) + 1
    block_ids, block_of = torch.unique(seg_of * branches + branch[real], return_inverse=True)
    block_seg, block_branch = block_ids // branches, block_ids % branches
    # each position's rank within its block (positions are in increasing order, the sort is stable)
    order = torch.sort(block_of, stable=True).indices
    counts = torch.bincount(block_of, minlength=len(block_ids))
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(block_of)
    rank[order] = torch.arange(len(order), device=device) - starts[block_of[order]]
    # the prompt block of each segment (-1: a segment whose prompt is entirely hidden)
    prompt_of_seg = torch.full((len(seg_ids),), -1, dtype=torch.long, device=device)
    is_prompt = block_branch == 0
    prompt_of_seg[block_seg[is_prompt]] = torch.nonzero(is_prompt).flatten()

    slots = torch.full((len(block_ids), int(counts.max())), -1, dtype=torch.long, device=device)
    slots[block_of, rank] = real  # [blocks, longest block]: the flat positions of each block's tokens

    def table(selected: Tensor, width: int) -> tuple[Tensor, Tensor]:
        """[len(selected), width] flat positions of those blocks' tokens (0 in padding slots) and validity."""
        slot = slots[selected, :width]
        return slot.clamp(min=0), slot >= 0

    prompt_blocks = torch.nonzero(is_prompt).flatten()
    branch_blocks = torch.nonzero(~is_prompt).flatten()
    prompt_width = int(counts[prompt_blocks].max()) if len(prompt_blocks) else 0
    branch_width = int(counts[branch_blocks].max()) if len(branch_blocks) else 0
    blocks: list[_Blocks] = []
    if len(prompt_blocks):
        q, valid = table(prompt_blocks, prompt_width)
        blocks.append(_make_blocks(q, valid, q, valid))
    if len(branch_blocks):
        q, valid = table(branch_blocks, branch_width)
        prompt_rows = prompt_of_seg[block_seg[branch_blocks]]
        pk, pvalid = table(prompt_rows.clamp(min=0), prompt_width)
        pvalid &= (prompt_rows >= 0)[:, None]
        blocks.append(_make_blocks(q, valid, torch.cat([pk, q], 1), torch.cat([pvalid, valid], 1)))
    inverse = torch.full(
        (rows * length,), sum(b.valid.numel() for b in blocks), dtype=torch.long, device=device
    )
    offset = 0
    for b in blocks:
        flat_valid = b.valid.reshape(-1)
        slots = torch.arange(flat_valid.numel(), device=device) + offset
        inverse[b.queries.reshape(-1)[flat_valid]] = slots[flat_valid]
        offset += flat_valid.numel()
    return BranchPlan(rows, length, blocks, inverse, dense_pairs)


def _make_blocks(queries: Tensor, valid: Tensor, keys: Tensor, key_valid: Tensor) -> _Blocks:
    # every key of a block is in the query's segment and in the prompt or the query's branch, so the rule
    # left to apply is causality (same row: flat order is column order) and the padding slots
    allowed = key_valid[:, None, :] & (keys[:, None, :] <= queries[:, :, None])
    # a padding query slot sees every key: its (finite, unread) output never reaches the result
    allowed |= ~valid[:, :, None]
    return _Blocks(queries, keys, valid, allowed)


def branch_attention(
    query: Tensor, key: Tensor, value: Tensor, plan: BranchPlan, scaling: float | None = None
) -> Tensor:
    """Attention of ``query`` [R, H, L, D] over ``key``/``value`` [R, KV, L, D] (H = KV·groups; query head h
    reads key head h // groups, as transformers' ``repeat_kv``) under the packed rule; ``[R, L, H, D]`` like
    transformers' ``sdpa_attention_forward``."""
    rows, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    scale = dim**-0.5 if scaling is None else scaling
    flat_q = query.transpose(0, 1).reshape(heads, rows * length, dim)
    flat_k = key.transpose(0, 1).reshape(kv_heads, rows * length, dim)
    flat_v = value.transpose(0, 1).reshape(kv_heads, rows * length, dim)
    outs = []
    for b in plan.blocks:
        n, tq = b.queries.shape
        tk = b.keys.shape[1]
        q = flat_q.index_select(1, b.queries.reshape(-1)).view(kv_heads, groups, n, tq, dim)
        q = q.transpose(1, 2).reshape(kv_heads * n, groups * tq, dim)
        k = flat_k.index_select(1, b.keys.reshape(-1)).view(kv_heads * n, tk, dim)
        v = flat_v.index_select(1, b.keys.reshape(-1)).view(kv_heads * n, tk, dim)
        mask = b.additive_mask(query.dtype, kv_heads, groups)
        weights = torch.softmax(torch.baddbmm(mask, q, k.transpose(1, 2), alpha=scale), dim=-1)
        out = torch.bmm(weights, v).view(kv_heads, n, groups, tq, dim)
        outs.append(out.permute(1, 3, 0, 2, 4).reshape(n * tq, heads, dim))
    outs.append(query.new_zeros(1, heads, dim))  # the slot of positions in no block
    return torch.cat(outs).index_select(0, plan.inverse).view(rows, length, heads, dim)
