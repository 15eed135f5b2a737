"""Sample a policy on prompts with Hugging Face ``generate``, seeded and reproducible.

A small loop over the model's forward with a KV cache (Hugging Face ``generate`` spends most of its time
in per-step overhead at this size). The prompt tokens are exactly those the trainer uses
(``alignlab.data.tokenize.encode_prompt``), so samples come from the trained distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from alignlab.data.tokenize import encode_prompt
from alignlab.models.parts import unwrap


@torch.no_grad()
def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    n: int = 1,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 512,
) -> list[list[str]]:
    """``n`` completions per prompt (``temperature = 0``: greedy, then all n are the same).

    Ancestral sampling from the full softmax (no top-k/top-p) with a KV cache; prompts are left-padded
    with explicit position ids, so each row sees exactly its own prompt. The same (model, prompts, n,
    seed) always gives the same completions.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    base = unwrap(model)
    device = next(base.parameters()).device
    was_training = base.training
    base.eval()
    encoded = [encode_prompt(tokenizer, p)[0] for p in prompts]
    rows = [i for i in range(len(prompts)) for _ in range(n)]
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out: list[list[str]] = [[] for _ in prompts]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            tokens = _sample_chunk(
                base, [encoded[i] for i in chunk], max_new_tokens, temperature, gen, eos, pad, device
            )
            for index, row in zip(chunk, tokens):
                out[index].append(tokenizer.decode(row, skip_special_tokens=True).strip())
    finally:
        base.train(was_training)
    return out


def _sample_chunk(
    model: Any,
    prompts: list[list[int]],
    max_new: int,
    temperature: float,
    gen: torch.Generator,
    eos: int,
    pad: int,
    device: torch.device,
) -> list[list[int]]:
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    generated: list[torch.Tensor] = []
    past = None
    step_ids, step_pos = ids, positions
    for _ in range(max_new):
        output = model(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=step_pos,
            past_key_values=past,
            use_cache=True,
        )
        past = output.past_key_values
        logits = output.logits[:, -1, :].float()
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, -1).cpu()
            token = torch.multinomial(probs, 1, generator=gen)[:, 0].to(device)
        token = torch.where(done, torch.full_like(token, pad), token)
        generated.append(token)
        done = done | (token == eos)
        if bool(done.all()):
            break
        step_ids = token[:, None]
        step_pos = step_pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    table = torch.stack(generated, dim=1).tolist()
    return [row[: row.index(eos)] if eos in row else row for row in table]
