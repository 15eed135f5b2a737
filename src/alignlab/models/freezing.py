"""Training only the top of a model: ``model.train_top_layers: N`` keeps the embeddings, the LM head and all
but the last N transformer blocks frozen, and trains those N blocks and the final norm.

Why: on a CPU the backward pass is most of a step's cost. Autograd stops at the lowest parameter that needs
a gradient, so with the top N of L blocks trainable the backward runs through N blocks (and the LM head's
input gradient) instead of all L, and the optimiser keeps Adam state for those blocks only. It is the
"freeze the lower layers" fine-tuning of ULMFiT (Howard & Ruder 2018, §3.2, gradual unfreezing, whose first
stage trains only the last layer), applied once and kept. The embeddings stay frozen because most causal LMs
tie them to the LM head.
"""

from __future__ import annotations

from typing import Any

import torch

from alignlab.models.parts import body_and_head


def transformer_blocks(model: Any) -> torch.nn.ModuleList:
    """The list of transformer blocks of a causal LM's body (``layers`` in Llama/Qwen, ``h`` in GPT-2)."""
    body, _ = body_and_head(model)
    return blocks_of(body)


def blocks_of(body: Any) -> torch.nn.ModuleList:
    """The one list of transformer blocks among a transformer body's children."""
    lists = [child for child in body.children() if isinstance(child, torch.nn.ModuleList) and len(child)]
    if len(lists) != 1:
        raise ValueError(f"{type(body).__name__} has no single list of transformer blocks")
    return lists[0]


def train_top_layers(model: Any, count: int) -> None:
    """Freeze every parameter of ``model`` but those of its last ``count`` transformer blocks and of the
    body's other non-embedding parts (the final norm)."""
    body, _ = body_and_head(model)
    model.requires_grad_(False)
    train_top_of_body(body, count)


def train_top_layers_of_reward_model(model: Any, count: int) -> None:
    """The same for a reward model (:class:`alignlab.models.reward.RewardModel`): its backbone's last
    ``count`` blocks and final norm train, and so does its reward head (new weights, which must learn)."""
    model.requires_grad_(False)
    train_top_of_body(model.backbone, count)
    model.reward_head.requires_grad_(True)


def train_top_of_body(body: Any, count: int) -> None:
    """Unfreeze the last ``count`` blocks of ``body`` and its non-embedding parts outside the blocks."""
    blocks = blocks_of(body)
    if count > len(blocks):
        raise ValueError(f"train_top_layers is {count} but the model has {len(blocks)} transformer blocks")
    for block in list(blocks)[len(blocks) - count :]:
        block.requires_grad_(True)
    for child in body.children():
        if child is not blocks and not isinstance(child, torch.nn.Embedding):
            child.requires_grad_(True)  # the final norm (Llama's ``norm``, GPT-2's ``ln_f``)
