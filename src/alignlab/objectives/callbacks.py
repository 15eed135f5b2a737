"""Callbacks: what a method or modifier needs from the training loop beyond ``scores -> loss``.

The loop (``train/``) names no method. An objective or modifier that needs more — frozen parameters, a
classifier fitted on the data, record reweighting, a reference built or moved in its own way — registers a
:class:`Callback` (``@objective(..., callback=...)`` or a modifier's ``callback``), and the loop calls every
registered callback at these points, in this order:

1. :meth:`Callback.on_data` — once per split (``train`` first, then ``eval``), after the records are
   read, converted, prepared and tokenised, before any batch is built, with a :class:`DataContext`. It
   may change record weights and ``Record.extras`` (BVPO reweights records; BCO fits its UDM classifier
   on the training records' prompt embeddings, which the loop computes: objectives load no model).
2. :meth:`Callback.on_policy` — once, on the freshly loaded policy, before the optimiser is built (Half
   Fine-Tuning freezes parameters here).
3. :meth:`Callback.build_reference` — once, when the objective uses a reference: a callback may return the
   reference model itself (SALSA's weight soup); the first that does wins, else the loop's default
   (``reference.path``, the policy's frozen copy, or the base with LoRA adapters off).
4. :meth:`Callback.on_step_end` — after every optimiser step (TR-DPO syncs the reference).

Two flags tell the loop what the callback implies: ``moves_reference`` (the reference changes during
training, so its log-probs are never cached) and ``needs_separate_reference`` (the reference must be its
own model, not the policy with adapters off, so LoRA is refused). Errors a callback raises as
``ValueError`` reach the user as configuration errors naming the split and the callback.

This module knows nothing of the loop: callbacks receive records, tensors and torch modules only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from alignlab.data.records import Record


@dataclass
class DataContext:
    """What :meth:`Callback.on_data` sees: the ``records`` of ``split`` (``train`` or ``eval``), the indices
    ``used`` of those that survived tokenisation (in order), the training split's records
    ``train_records`` (to fit on), and ``embed(texts, encoder)``: mean-pooled embeddings [len(texts), H] of
    a frozen text encoder (a hub id, folder or ``tiny:ARCH``), loaded once per run by the loop."""

    split: str
    records: list[Record]
    used: list[int]
    train_records: list[Record]
    embed: Callable[[Sequence[str], str], Tensor]


class Callback:
    """Base class: every hook does nothing; override the ones a method needs."""

    name: str = ""
    moves_reference: bool = False
    needs_separate_reference: bool = False

    def on_data(self, data: DataContext) -> list[str]:
        """A split's records after tokenisation (see :class:`DataContext`). May set ``record.weight`` and
        ``record.extras``. Returns notes for the run log."""
        return []

    def on_policy(self, policy: nn.Module) -> list[str]:
        """The loaded policy, before the optimiser sees its parameters. Returns notes for the run log."""
        return []

    def build_reference(self, load: Callable[[str], nn.Module]) -> nn.Module | None:
        """The reference model, or None for the loop's default. ``load(path)`` loads a causal LM from a path
        or hub id with the policy's settings (no LoRA)."""
        return None

    def on_step_end(self, step: int, policy: nn.Module, reference: nn.Module | None) -> None:
        """After optimiser step ``step`` (1-based), with the unwrapped policy and the reference model."""


CallbackFactory = Callable[[dict[str, Any]], Callback | None]
"""What an objective or modifier registers: its hyper-parameters -> a callback (None when not needed)."""
