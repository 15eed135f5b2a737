"""Bind objectives to hyper-parameters and weights, and sum several into one training loss.

Config form (``objectives:`` in a run config)::

    objectives:
      - {name: dpo, beta: 0.1, modifiers: {length_norm: true}}
      - {name: sft, weight: 0.2}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.objectives import modifiers as modifier_registry
from alignlab.objectives.metrics import standard_metrics
from alignlab.objectives.registry import ObjectiveSpec, get
from alignlab.objectives.views import build_view
from alignlab.scoring.scores import FULL_VOCAB_REFERENCE_NEEDS, Scores


@dataclass
class BoundObjective:
    spec: ObjectiveSpec
    params: dict[str, Any]
    weight: float = 1.0
    modifiers: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, entry: dict[str, Any] | str, where: str = "") -> BoundObjective:
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        if "name" not in entry:
            raise ValueError(f"{where}an objective entry needs 'name' (see `alignlab objectives`)")
        spec = get(entry.pop("name"))
        weight = float(entry.pop("weight", 1.0))
        mods = modifier_registry.check(entry.pop("modifiers", None) or {}, where=where)
        params = spec.check_params(entry, where)
        return cls(spec, params, weight, mods)

    @property
    def needs(self) -> frozenset[str]:
        needs = self.spec.needs | modifier_registry.needs(self.modifiers)
        if "reference_free" in self.modifiers:
            needs = needs - {"reference"}  # log π_ref ≡ 0: no reference model is loaded at all
        return needs

    def per_example(self, scores: Scores, feedback: Feedback) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(loss per example, example weights, metrics) for this objective alone."""
        batch = build_view(self.spec.feedback, scores, feedback)
        batch = modifier_registry.before(batch, self.modifiers)
        kwargs = dict(self.params)
        if self.spec.stateful:
            kwargs["state"] = self.state
        out = self.spec.fn(batch, **kwargs)
        loss, metrics = out if isinstance(out, tuple) else (out, {})
        loss, extra = modifier_registry.after(batch, loss, self.modifiers)
        standard = standard_metrics(batch, self.params)
        return loss, batch.weight.to(loss.dtype), {**standard, **metrics, **extra}

    def __call__(self, scores: Scores, feedback: Feedback) -> tuple[Tensor, dict[str, Tensor]]:
        loss, weight, metrics = self.per_example(scores, feedback)
        return weighted_mean(loss, weight), metrics


def weighted_mean(loss: Tensor, weight: Tensor) -> Tensor:
    if loss.dim() == 0:
        return loss
    total = weight.sum()
    return (loss * weight).sum() / total.clamp(min=1e-12) if total > 0 else loss.sum() * 0.0


class Objective:
    """A weighted sum of bound objectives: ``loss = Σ_i w_i · mean_weighted(loss_i)``."""

    def __init__(self, parts: list[BoundObjective]):
        if not parts:
            raise ValueError("at least one objective is needed")
        self.parts = parts

    @classmethod
    def from_config(cls, entries: list[dict[str, Any] | str] | dict[str, Any] | str) -> Objective:
        if isinstance(entries, (dict, str)):
            entries = [entries]
        return cls([BoundObjective.from_config(e, where=f"objectives[{i}]: ") for i, e in enumerate(entries)])

    @property
    def needs(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for part in self.parts:
            out |= part.needs
        return out

    @property
    def uses_reference(self) -> bool:
        return any("reference" in p.needs or p.needs & FULL_VOCAB_REFERENCE_NEEDS for p in self.parts)

    @property
    def feedback_kinds(self) -> set[str]:
        return {p.spec.feedback for p in self.parts}

    @property
    def names(self) -> list[str]:
        return [p.spec.name for p in self.parts]

    def state_dict(self) -> dict[str, Any]:
        return {str(i): p.state for i, p in enumerate(self.parts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, p in enumerate(self.parts):
            p.state.clear()
            p.state.update(state.get(str(i), {}))

    def __call__(self, scores: Scores, feedback: Feedback) -> tuple[Tensor, dict[str, float]]:
        total = torch.zeros((), dtype=scores.logps.dtype, device=scores.logps.device)
        metrics: dict[str, float] = {}
        single = len(self.parts) == 1
        for part in self.parts:
            loss, part_metrics = part(scores, feedback)
            total = total + part.weight * loss
            prefix = "" if single else f"{part.spec.name}/"
            if not single:
                metrics[f"{prefix}loss"] = float(loss.detach())
            for key, value in part_metrics.items():
                metrics[f"{prefix}{key}"] = (
                    float(value.detach().float().mean()) if torch.is_tensor(value) else value
                )
        return total, metrics
