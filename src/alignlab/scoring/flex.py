"""FlexAttention for the packed layout: the batch's block mask as a ``BlockMask`` instead of a dense 4D mask.

The packed layout (``data/batching.py``) lets a token attend to an earlier token of its own segment that is in
the prompt or in its own branch. With SDPA that rule is a dense ``[R, 1, L, L]`` mask and every query-key pair
is computed, masked or not. FlexAttention evaluates the same rule as a ``mask_mod`` and skips whole 128x128
blocks in which nothing is visible (other segments of the row, the upper triangle), so attention costs what
the visible pairs cost.

``use_packed_attention(model)`` switches a Hugging Face model to the attention function registered here under
``ATTENTION_NAME``. It dispatches on the mask: a ``BlockMask`` goes to FlexAttention (transformers' compiled
``flex_attention_forward`` on CUDA; on CPU torch's unfused reference implementation, forward only, since torch
has no FlexAttention backward on CPU); a call that comes with ``alignlab_branches`` (a
``branch_attention.BranchPlan``) computes only the visible prompt and branch blocks; a dense mask that comes
with ``alignlab_segments`` (the batch's ``(row, start, end)`` segment spans) is computed segment by segment
with SDPA, each on its own square of the mask, which skips the pairs between segments (the engine's
``segment`` attention, the default on CPU offline, where SDPA with a dense mask computes the whole row);
anything else (a 2D padding mask made into SDPA's mask,
generation) goes to SDPA as before. So a switched model keeps working everywhere.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from alignlab.scoring.branch_attention import branch_attention

ATTENTION_NAME = "alignlab_packed"
BLOCK_SIZE = 128

try:
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

    FLEX_AVAILABLE = True
except ImportError:  # torch < 2.5
    BlockMask = None  # type: ignore[assignment,misc]
    FLEX_AVAILABLE = False


def flex_supported(device: torch.device | str) -> tuple[bool, str]:
    """Whether the flex path can train on ``device``, and if not, why (for the engine's message)."""
    if not FLEX_AVAILABLE:
        return (
            False,
            f"torch {torch.__version__} has no torch.nn.attention.flex_attention (needs torch >= 2.5)",
        )
    if torch.device(device).type != "cuda":
        return False, "FlexAttention has no backward pass on CPU in torch; it scores on CPU but cannot train"
    return True, ""


def packed_block_mask(segment_ids: Tensor, branch_ids: Tensor, block_size: int = BLOCK_SIZE) -> Any:
    """The packed layout's visibility rule as a BlockMask over ``[R, L]`` segment and branch ids.

    Query q sees key k when k <= q, both are in the same (non-padding) segment, and k is in the prompt
    (branch 0) or in q's own branch. A padding query sees itself only (so no row is empty), exactly as
    ``Batch.attention_mask_4d``.
    """
    if not FLEX_AVAILABLE:
        raise RuntimeError("FlexAttention needs torch >= 2.5; use engine attention 'sdpa'")
    seg, branch = segment_ids, branch_ids
    rows, length = seg.shape

    def mask_mod(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
        same_segment = (seg[b, q] == seg[b, k]) & (seg[b, k] >= 0)
        visible_branch = (branch[b, k] == 0) | (branch[b, q] == branch[b, k])
        return (same_segment & visible_branch & (k <= q)) | (q == k)

    return create_block_mask(
        mask_mod, rows, None, length, length, device=seg.device, BLOCK_SIZE=block_size, _compile=seg.is_cuda
    )


def _packed_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Tensor, Tensor | None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plan = kwargs.pop(BRANCHES, None)
    if plan is not None:
        if dropout == 0.0 and not any(kwargs.get(name) is not None for name in _NOT_IN_BRANCH_ATTENTION):
            return branch_attention(query, key, value, plan, scaling), None
        attention_mask = plan.dense_mask()  # attention dropout, soft-capping, sinks: SDPA on the dense mask
    elif _is_placeholder(attention_mask):
        raise RuntimeError(
            "the packed layout's branch plan did not reach the attention function (the model does not pass "
            "its keyword arguments on); set train.attention: segment"
        )
    segments = kwargs.pop("alignlab_segments", None)
    if segments is not None and isinstance(attention_mask, Tensor):
        return _segment_attention(
            module, query, key, value, attention_mask, segments, scaling, dropout, **kwargs
        )
    if not (FLEX_AVAILABLE and isinstance(attention_mask, BlockMask)):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if query.is_cuda:
        from transformers.integrations.flex_attention import flex_attention_forward

        out, _ = flex_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
        return out, None
    # CPU: torch's unfused reference implementation (forward only); used to check numerics against SDPA.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        out = flex_attention(
            query,
            key,
            value,
            block_mask=attention_mask,
            scale=scaling,
            enable_gqa=query.shape[1] != key.shape[1],
        )
    return out.transpose(1, 2).contiguous(), None


# Below this many tokens a row is computed as one square: on a 2-core CPU, per-segment SDPA (about 0.3 ms per
# segment per fwd+bwd in a 2-layer model) lost to the dense row at 128-256 tokens, broke even at 512 and was
# ~2x faster at 1024 and above (docs/performance.md, "Segment attention").
SEGMENT_MIN_ROW = 512


def _attention_blocks(segments: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The squares to compute: every segment of a long row, one square up to the last segment for a short row
    (or a row of one segment)."""
    by_row: dict[int, list[tuple[int, int, int]]] = {}
    for span in segments:
        by_row.setdefault(span[0], []).append(span)
    blocks = []
    for r, spans in by_row.items():
        extent = max(end for _, _, end in spans)
        if extent < SEGMENT_MIN_ROW or len(spans) == 1:
            blocks.append((r, 0, extent))
        else:
            blocks.extend(spans)
    return blocks


def _segment_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor,
    segments: list[tuple[int, int, int]],
    scaling: float | None,
    dropout: float,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """SDPA on each segment's square of the dense mask; positions outside every segment (padding) get zeros,
    which nothing reads. Output as SDPA's: ``[R, L, heads, D]``."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, length, dim = query.shape
    out = query.new_zeros(rows, length, heads, dim)
    for r, start, end in _attention_blocks(segments):
        piece, _ = sdpa_attention_forward(
            module,
            query[r : r + 1, :, start:end],
            key[r : r + 1, :, start:end],
            value[r : r + 1, :, start:end],
            mask[r : r + 1, :, start:end, start:end],
            dropout=dropout,
            scaling=scaling,
            **kwargs,
        )
        out[r, start:end] = piece[0]
    return out, None


BRANCHES = "alignlab_branches"  # the keyword argument that carries a branch_attention.BranchPlan
# attention arguments branch_attention does not implement: with any of them set, SDPA on the dense mask
_NOT_IN_BRANCH_ATTENTION = ("softcap", "s_aux", "sinks", "position_bias")


def mask_placeholder(shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """What the model is given as its 4D mask when attention takes a branch plan: transformers passes a 4D
    mask through unchanged, and this one costs no memory (every stride 0). Never read as a mask: an
    attention call that gets it without the plan raises."""
    rows, length = shape
    return torch.zeros((), dtype=dtype).expand(rows, 1, length, length)


def _is_placeholder(mask: Any) -> bool:
    return isinstance(mask, Tensor) and mask.dim() == 4 and mask.numel() > 1 and not any(mask.stride())


_registered = False


def register() -> None:
    """Register the dispatching attention function (and SDPA's mask builder) under ``ATTENTION_NAME``."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, _packed_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)
    _registered = True


def use_packed_attention(model: Any) -> None:
    """Switch ``model`` (an unwrapped Hugging Face model) to the flex-dispatching attention, once."""
    config = model.config
    if getattr(config, "_attn_implementation", None) == ATTENTION_NAME:
        return
    register()
    model.set_attn_implementation(ATTENTION_NAME)
