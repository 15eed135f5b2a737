"""Bind objectives to hyper-parameters and weights, and sum several into one training loss.

Config form (``objectives:`` in a run config)::

    objectives:
      - {name: dpo, beta: 0.1, modifiers: {length_norm: true}}
      - {name: sft, weight: 0.2}

**A step's loss does not depend on how it is cut.** Each part's loss is a weighted mean over the examples
of the *global* batch, ``Σ_e w_e·ℓ_e / Σ_e w_e``; when the loop cuts that batch into micro-batches (and
across processes) it first sums every part's normalisers over all of them (:meth:`Objective.totals`,
then an all-reduce), and each micro-batch contributes ``Σ_{e in micro} w_e·ℓ_e / W_global``
(:class:`Normalisers`). The contributions add up to the loss of the uncut batch, exactly.

**Nor does a running state.** An objective registered with ``step_statistics`` (BCO's running δ, LCPO's
ε, β-DPO's margin statistics and filter, MORE's task weights) has its state folded once per step from
the whole global batch (:meth:`Objective.step_statistics`: sums added over micro-batches and processes,
or every example's rows gathered in the global batch's order; then :meth:`Objective.fold_step_statistics`),
before the step's loss or after it (``after_step``); the loss only reads the state and its examples'
per-example results. A call without ``totals`` takes its batch as the whole step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.objectives import modifiers as modifier_registry
from alignlab.objectives.callbacks import Callback
from alignlab.objectives.metrics import standard_metrics
from alignlab.objectives.registry import ObjectiveSpec, get
from alignlab.objectives.state import ExampleRows, ObjectiveState
from alignlab.objectives.views import build_view, example_groups
from alignlab.scoring.scores import FULL_VOCAB_REFERENCE_NEEDS, Scores


@dataclass(frozen=True)
class Normalisers:
    """What one part's loss is normalised by, summed over the whole global batch (every micro-batch, every
    process): ``weight`` Σ of its examples' weights, ``tokens`` scored completion tokens, ``sequences``
    scored completions, ``groups`` records. An objective registered with ``reduction="sum"`` receives
    them as its ``normalisers`` argument and normalises its per-example loss itself (token means over the
    global batch); every other objective is reduced as ``Σ w·ℓ / weight``."""

    weight: float
    tokens: float
    sequences: float
    groups: float


@dataclass
class BatchTotals:
    """The normalisers of every part of an :class:`Objective` for a set of completions; they add up."""

    part_weights: list[float]
    tokens: float
    sequences: float
    groups: float

    def as_tensor(self) -> Tensor:
        """One float64 vector, for an all-reduce across processes."""
        return torch.tensor(
            [*self.part_weights, self.tokens, self.sequences, self.groups], dtype=torch.float64
        )

    @classmethod
    def from_tensor(cls, values: Tensor) -> BatchTotals:
        v = [float(x) for x in values.tolist()]
        return cls(v[:-3], v[-3], v[-2], v[-1])

    def __add__(self, other: BatchTotals) -> BatchTotals:
        return BatchTotals.from_tensor(self.as_tensor() + other.as_tensor())

    def for_part(self, i: int) -> Normalisers:
        return Normalisers(self.part_weights[i], self.tokens, self.sequences, self.groups)


@dataclass
class BoundObjective:
    spec: ObjectiveSpec
    params: dict[str, Any]
    weight: float = 1.0
    modifiers: dict[str, Any] = field(default_factory=dict)
    state: ObjectiveState = field(default_factory=ObjectiveState)

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
        needs = self.spec.needs_with(self.params) | modifier_registry.needs(self.modifiers)
        return needs - modifier_registry.drops_needs(self.modifiers)

    @property
    def callbacks(self) -> list[Callback]:
        """What this objective and its modifiers need from the training loop (``objectives/callbacks.py``)."""
        own = self.spec.callback(self.params) if self.spec.callback is not None else None
        return ([own] if own is not None else []) + modifier_registry.callbacks(self.modifiers)

    def per_example(
        self,
        scores: Scores,
        feedback: Feedback,
        training: bool = True,
        normalisers: Normalisers | None = None,
        step_results: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(loss per example, example weights, metrics) for this objective alone."""
        batch = build_view(self.spec.feedback, scores, feedback)
        carry: modifier_registry.Carry = {}
        batch = modifier_registry.before(batch, self.modifiers, carry)
        kwargs = self.spec.loss_kwargs(self.params)
        if self.spec.stateful:
            kwargs["state"] = self.state if training else self.state.copy_for_eval()
        if self.spec.reduction == "sum":
            kwargs["normalisers"] = normalisers
        if self.takes_step_results:
            kwargs["step_results"] = step_results if training else None
        out = self.spec.fn(batch, **kwargs)
        loss, metrics = out if isinstance(out, tuple) else (out, {})
        loss, extra = modifier_registry.after(batch, loss, self.modifiers, carry)
        standard = standard_metrics(batch, self.params)
        return loss, batch.weight.to(loss.dtype), {**standard, **metrics, **extra}

    @property
    def takes_step_results(self) -> bool:
        return "step_results" in inspect.signature(self.spec.fn).parameters

    def folds(self, after_step: bool) -> bool:
        """Whether this part's state is folded per step, before (False) or after (True) the step's loss."""
        stats = self.spec.step_statistics
        return stats is not None and stats.after_step == after_step

    def step_statistics(self, scores: Scores, feedback: Feedback) -> Tensor | ExampleRows | None:
        """This batch's additive sums, or its per-example rows with each row's group, for the part's
        running state (None without ``step_statistics``); the batch is the view the loss sees, modifiers
        applied."""
        stats = self.spec.step_statistics
        if stats is None:
            return None
        batch = build_view(self.spec.feedback, scores, feedback)
        batch = modifier_registry.before(batch, self.modifiers, {})
        values = stats.gather(batch, self.params, self.state)
        if stats.per_example:
            return ExampleRows(values, example_groups(batch))
        if values.numel() != stats.size:
            raise ValueError(
                f"{self.spec.name}: step_statistics gave {values.numel()} sums, declared {stats.size}"
            )
        return values

    def fold_step_statistics(self, values: Tensor) -> Tensor | None:
        """Fold a whole step's sums (or its rows, in the global batch's order) into the running state;
        per example, returns the per-example results."""
        assert self.spec.step_statistics is not None
        return self.spec.step_statistics.fold(self.state, values, self.params)

    def local_weight(self, feedback: Feedback) -> float:
        """Σ of this part's example weights in ``feedback``'s batch (known before any forward pass)."""
        n = feedback.num_completions
        zeros = Scores(logps=torch.zeros(n, dtype=torch.float64), lengths=torch.ones(n, dtype=torch.float64))
        return float(build_view(self.spec.feedback, zeros, feedback).weight.sum())

    def __call__(
        self,
        scores: Scores,
        feedback: Feedback,
        training: bool = True,
        normalisers: Normalisers | None = None,
        step_results: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """This part's loss: the weighted mean over ``scores`` (``normalisers`` None), or this batch's
        share of the global batch's loss (``normalisers`` from :meth:`Objective.totals`, ``step_results``
        this batch's rows of the step's per-example fold). Without ``normalisers`` the batch is the whole
        step: a step-statistics state is folded from it (before or after the loss, as registered)."""
        whole_step = training and normalisers is None
        if whole_step and self.folds(after_step=False):
            step_results = self._fold_batch(scores, feedback)
        after = self.step_statistics(scores, feedback) if whole_step and self.folds(after_step=True) else None
        loss, weight, metrics = self.per_example(scores, feedback, training, normalisers, step_results)
        if after is not None:
            self.fold_step_statistics(after.values if isinstance(after, ExampleRows) else after)
        if self.spec.reduction == "sum":
            return (loss.sum() if loss.dim() else loss), metrics
        if normalisers is None:
            return weighted_mean(loss, weight), metrics
        if loss.dim() == 0:
            # A loss the objective already reduced over its batch: this batch's share by records.
            return loss * (feedback.num_groups / max(normalisers.groups, 1.0)), metrics
        if normalisers.weight <= 0:
            return loss.sum() * 0.0, metrics
        return (loss * weight).sum() / normalisers.weight, metrics

    def _fold_batch(self, scores: Scores, feedback: Feedback) -> Tensor | None:
        values = self.step_statistics(scores, feedback)
        return self.fold_step_statistics(values.values if isinstance(values, ExampleRows) else values)


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

    @property
    def callbacks(self) -> list[Callback]:
        return [c for p in self.parts for c in p.callbacks]

    def folds_step_statistics(self, after_step: bool = False) -> bool:
        """Whether some part's running state is folded once per step from the global batch, before the
        step's loss (``after_step`` False) or after it."""
        return any(p.folds(after_step) for p in self.parts)

    def step_statistics(
        self, scores: Scores, feedback: Feedback, after_step: bool = False
    ) -> dict[int, Tensor | ExampleRows]:
        """One batch's statistics of every part folded before (or after) the step, by part index: additive
        sums, or per-example rows; the loop combines them over the step's micro-batches and processes
        (``train/step_statistics.py``) before :meth:`fold_step_statistics`."""
        out: dict[int, Tensor | ExampleRows] = {}
        for i, part in enumerate(self.parts):
            if part.folds(after_step):
                values = part.step_statistics(scores, feedback)
                assert values is not None
                out[i] = values
        return out

    def fold_step_statistics(self, values: dict[int, Tensor], after_step: bool = False) -> dict[int, Tensor]:
        """Fold a whole step's statistics (summed, or every example's rows in the global batch's order)
        into the parts' states; returns the per-example results by part index."""
        results: dict[int, Tensor] = {}
        for i, part in enumerate(self.parts):
            if part.folds(after_step):
                out = part.fold_step_statistics(values[i])
                if out is not None:
                    results[i] = out
        return results

    def totals(self, feedback: Feedback, lengths: Tensor) -> BatchTotals:
        """Every part's normalisers over one batch (``lengths``: scored tokens per completion); the loop
        sums them over the micro-batches and processes of a step before any forward pass."""
        scored = feedback.role_mask("").to(lengths.device)
        return BatchTotals(
            [p.local_weight(feedback) for p in self.parts],
            tokens=float(lengths[scored].sum()),
            sequences=float(scored.sum()),
            groups=float(feedback.num_groups),
        )

    def state_dict(self) -> dict[str, Any]:
        return {str(i): dict(p.state) for i, p in enumerate(self.parts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, p in enumerate(self.parts):
            p.state.clear()
            p.state.update(state.get(str(i), {}))

    def __call__(
        self,
        scores: Scores,
        feedback: Feedback,
        training: bool = True,
        totals: BatchTotals | None = None,
        step_results: dict[int, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """``Σ_i w_i·loss_i`` and the metrics. ``training`` False (evaluation) leaves running state untouched;
        ``totals`` (the global batch's, from :meth:`totals`) makes the loss this batch's exact share;
        ``step_results`` are this batch's rows of the step's per-example folds, by part index."""
        total = torch.zeros((), dtype=scores.logps.dtype, device=scores.logps.device)
        metrics: dict[str, float] = {}
        single = len(self.parts) == 1
        for i, part in enumerate(self.parts):
            normalisers = totals.for_part(i) if totals is not None else None
            results = step_results.get(i) if step_results else None
            loss, part_metrics = part(scores, feedback, training, normalisers, results)
            total = total + part.weight * loss
            prefix = "" if single else f"{part.spec.name}/"
            if not single:
                metrics[f"{prefix}loss"] = float(loss.detach())
            for key, value in part_metrics.items():
                metrics[f"{prefix}{key}"] = (
                    float(value.detach().float().mean()) if torch.is_tensor(value) else value
                )
        return total, metrics
