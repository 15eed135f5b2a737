"""Modifiers: transformations that apply across losses (METHODS.md "Modifiers"), as registered objects.

A modifier is a :class:`Modifier` with a name, its parameters (``defaults``; a scalar config value sets
``main``), what it adds to the engine's work (``needs``) or removes (``drops_needs``), and up to four
parts, each optional:

- ``validate(params)``: raise ``ValueError`` on a bad parameter (the config loader adds where);
- ``before(batch, params, carry)``: transform the batch an objective receives (length normalisation,
  label smoothing), or put a per-example target into ``carry`` for ``after`` to read (the SFT NLL of the
  chosen answer, taken before any transform);
- ``after(batch, loss, params, carry)``: transform the per-example loss (add α·NLL, multiply by a weight),
  returning ``(loss, metrics)``;
- ``callback(params)``: a :class:`~alignlab.objectives.callbacks.Callback` for what the training loop must
  do (sync the reference, freeze parameters, reweight records).

The modifiers on an objective compose as a chain (optax's ``chain`` is the model): every ``before`` in
:data:`MODIFIERS` order, the loss, then every ``after`` in the same order. The order is the catalog's, not
the config's, so each composition is well defined: target-capturing modifiers come first (they read the
untransformed scores), score transforms next, label smoothing (which appends every pair flipped) last.
``carry`` holds per-example tensors aligned with the batch's examples; a ``before`` that changes the
number of examples maps it too. So RPO is ``dpo`` with ``modifiers: {sft_aux: α}``, not an objective.

Config form: ``modifiers: {length_norm: true, sft_aux: 1.0, tr_dpo: {alpha: 0.6, sync_steps: 512}}``. A
scalar value sets the modifier's main parameter, ``true`` takes its defaults, ``false``/``null`` drops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.callbacks import Callback

Carry = dict[str, Tensor]


class Modifier:
    """Base class; a subclass sets the attributes and overrides the parts it has."""

    name: str = ""
    defaults: dict[str, Any] = {}
    main: str | None = None  # the parameter a scalar config value sets
    needs: frozenset[str] = frozenset()
    drops_needs: frozenset[str] = frozenset()  # what the objective no longer needs (reference_free)
    summary: str = ""

    def validate(self, params: dict[str, Any]) -> None:
        """Raise ValueError naming the bad parameter."""

    def before(self, batch: Any, params: dict[str, Any], carry: Carry) -> Any:
        return batch

    def after(
        self, batch: Any, loss: Tensor, params: dict[str, Any], carry: Carry
    ) -> tuple[Tensor, dict[str, Tensor]]:
        return loss, {}

    def callback(self, params: dict[str, Any]) -> Callback | None:
        return None


MODIFIERS: dict[str, Modifier] = {}
ALIASES = {"wpo": "wpo_weight", "rpo": "sft_aux", "tr": "tr_dpo"}  # names METHODS.md and TRL users know


def register(modifier: Modifier) -> Modifier:
    """Add ``modifier`` to the catalog; the registration order is the order the chain applies them. The
    catalog modules (``modifier_catalog.py``, ``loop_modifiers.py``) register theirs when the objectives
    package is imported."""
    if modifier.name in MODIFIERS:
        raise ValueError(f"modifier '{modifier.name}' is registered twice")
    MODIFIERS[modifier.name] = modifier
    return modifier


def normalise(name: str, value: Any, where: str = "") -> dict[str, Any] | None:
    """The full parameter dict of modifier ``name`` from its config value (None = modifier off)."""
    modifier = MODIFIERS[name]
    if value is None or value is False:
        return None
    params = dict(modifier.defaults)
    if value is True:
        return params
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(modifier.defaults))
        if unknown:
            raise ValueError(
                f"{where}modifier '{name}' has no parameter(s) {unknown} (allowed: {sorted(modifier.defaults)})"
            )
        params.update(value)
    elif modifier.main is not None:
        params[modifier.main] = value
    else:
        raise ValueError(f"{where}modifier '{name}' takes true/false or a mapping, got {value!r}")
    try:
        modifier.validate(params)
    except ValueError as err:
        raise ValueError(f"{where}modifier '{name}': {err}") from None
    return params


def check(mods: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Validate a ``modifiers:`` mapping; returns ``{name: full params}`` for the modifiers that are on,
    in the order the chain applies them."""
    if not isinstance(mods, dict):
        raise ValueError(f"{where}'modifiers' must be a mapping of modifier name to value, got {mods!r}")
    mods = {ALIASES.get(name, name): value for name, value in mods.items()}
    unknown = sorted(set(mods) - set(MODIFIERS))
    if unknown:
        raise ValueError(f"{where}unknown modifier(s) {unknown}; known: {sorted(MODIFIERS) or 'none'}")
    out: dict[str, Any] = {}
    for name in MODIFIERS:
        if name in mods:
            params = normalise(name, mods[name], where)
            if params is not None and params.get("enabled", True) is not False:
                out[name] = params
    return out


def needs(mods: dict[str, Any]) -> frozenset[str]:
    """What the modifiers add to the engine's work."""
    out: frozenset[str] = frozenset()
    for name in mods:
        out |= MODIFIERS[name].needs
    return out


def drops_needs(mods: dict[str, Any]) -> frozenset[str]:
    """What the objective no longer needs under these modifiers (log π_ref ≡ 0 needs no reference)."""
    out: frozenset[str] = frozenset()
    for name in mods:
        out |= MODIFIERS[name].drops_needs
    return out


def callbacks(mods: dict[str, Any]) -> list[Callback]:
    out = []
    for name, params in mods.items():
        callback = MODIFIERS[name].callback(params)
        if callback is not None:
            out.append(callback)
    return out


def before(batch: Any, mods: dict[str, Any], carry: Carry | None = None) -> Any:
    """Every modifier's ``before`` in chain order. ``carry`` (filled here) goes to :func:`after`."""
    carry = {} if carry is None else carry
    for name, params in mods.items():
        batch = MODIFIERS[name].before(batch, params, carry)
    return batch


def after(
    batch: Any, loss: Tensor, mods: dict[str, Any], carry: Carry | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Every modifier's ``after`` in chain order; metrics detached."""
    carry = {} if carry is None else carry
    metrics: dict[str, Tensor] = {}
    for name, params in mods.items():
        loss, more = MODIFIERS[name].after(batch, loss, params, carry)
        metrics.update(more)
    return loss, {k: v.detach() if torch.is_tensor(v) else v for k, v in metrics.items()}
