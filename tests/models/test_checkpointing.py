"""model.gradient_checkpointing (on by default under ``alignlab trl``, as in TRL): the same loss and
gradients as without it, and no deprecation warning from transformers' renamed method."""

from __future__ import annotations

import warnings

import torch

from alignlab.models.loading import ModelSettings, load_causal_lm


def _loss_and_grads(checkpointing: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model = load_causal_lm(ModelSettings(path="tiny:llama", gradient_checkpointing=checkpointing))
    model.train()
    on = getattr(model, "is_activation_checkpointing", None)  # transformers >= 5.x; older: is_gradient_...
    assert (on if on is not None else model.is_gradient_checkpointing) is checkpointing
    ids = torch.arange(3, 19).reshape(2, 8)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_checkpointing_changes_neither_loss_nor_gradients_and_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        loss_on, grads_on = _loss_and_grads(True)
    loss_off, grads_off = _loss_and_grads(False)
    assert torch.equal(loss_on, loss_off)
    assert len(grads_on) == len(grads_off) > 0
    for on, off in zip(grads_on, grads_off):
        torch.testing.assert_close(on, off, rtol=0, atol=1e-6)
