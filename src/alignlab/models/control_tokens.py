"""New vocabulary entries for control codes (Quark's reward-quantile tags): added to the tokenizer as special
tokens and to the model's embeddings, each new row drawn from N(mean, std) of the existing rows.

Why new entries rather than text: a tag written as text (``<|quark_0|>``) is several ordinary tokens that
the prompts and completions also use, so its embedding cannot move freely towards "this is the best
quantile"; a dedicated row can. Quark's official code does the same (GXimingLu/Quark ``policy.py``:
``tokenizer.add_tokens(tree_tokens, special_tokens=True)``, ``resize_token_embeddings`` and the new input
rows drawn from a normal with the per-dimension mean and std of the old ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from alignlab.models.parts import unwrap


def add_control_tokens(model: Any, tokenizer: Any, tokens: Sequence[str], seed: int = 0) -> list[int]:
    """Add ``tokens`` to ``tokenizer`` (special: never split, kept whole when decoding) and grow ``model``'s
    embeddings to the tokenizer's size; returns the tokens' ids. Tokens already in the vocabulary (a model
    saved after training with them) keep their ids and rows. New rows: per-dimension N(mean, std) of the
    other input rows (seeded); an untied output head gets its new rows the same way from its own rows. A
    matrix with spare rows (a vocabulary padded to a multiple) gives them to the new tokens before growing."""
    known = tokenizer.get_vocab()
    fresh = [t for t in tokens if t not in known]
    tokenizer.add_tokens(list(tokens), special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    if not fresh:
        return ids
    fresh_ids = torch.tensor(tokenizer.convert_tokens_to_ids(fresh))
    base = unwrap(model)
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    output = base.get_output_embeddings()
    matrices = [base.get_input_embeddings().weight]
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)  # an untied head
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in matrices:
            keep = torch.ones(weight.shape[0], dtype=torch.bool)
            keep[fresh_ids] = False
            existing = weight[keep].float()
            mean, std = existing.mean(0), existing.std(0, unbiased=False)  # numpy's std, as the official code
            new = torch.randn(len(fresh), weight.shape[1], generator=generator)
            weight[fresh_ids] = (mean + std * new).to(weight.dtype)
    return ids
