"""The reserved KV cache gives the same next-token logits as transformers' growing DynamicCache, through
row selection, repetition and growth past the reserved room."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from alignlab.generation.kv_cache import ReservedLayer, reserve
from alignlab.models.tiny import tiny_model


def decode(model, reserved: bool, steps: int = 6) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 200, (2, 7), generator=gen)
    out = model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(3)  # 6 rows
    if reserved:
        cache = reserve(cache, 3)  # less room than the steps below: it must grow
        assert all(isinstance(layer, ReservedLayer) for layer in cache.layers)
    token = out.logits[:, -1].argmax(-1).repeat_interleave(3)[:, None]
    rows = torch.arange(6)
    logits = []
    for step in range(steps):
        if step == 2:  # rows 1 and 4 finish and leave the batch
            rows = torch.tensor([0, 2, 3, 5])
            cache.batch_select_indices(rows)
            token = token[rows]
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        logits.append(out.logits[:, -1])
        token = out.logits[:, -1].argmax(-1)[:, None]
    return logits


def test_reserved_cache_decodes_like_the_dynamic_cache() -> None:
    model, _ = tiny_model("llama", seed=2)
    model.eval()
    with torch.no_grad():
        plain, reserved = decode(model, False), decode(model, True)
    for a, b in zip(plain, reserved):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
