"""One optimiser step on a :class:`~alignlab.train.source.StepBatch`, cut into micro-batches and processes.

**The step's loss does not depend on how it is cut.** Before any forward pass, every micro-batch of every
process is laid out, the objective's normalisers (each part's total weight, the token, sequence and record
counts: :meth:`~alignlab.objectives.compose.Objective.totals`) are summed over them and all-reduced across
processes; each micro-batch then back-propagates its exact share ``Σ_{e in micro} w_e·ℓ_e / W_global``.
DDP averages gradients over the W processes, so each process scales its share by W: the summed shares are
the loss of the uncut global batch, and so are the gradients.

An objective whose running state is folded once per step (``step_statistics``) gets it from the whole
global batch. Folded before the loss (BCO's δ, β-DPO's filter, "this batch included"): with one
micro-batch on one process the statistics come from the training forward pass itself; otherwise a
no-gradient pass over the step's micro-batches collects them first. Folded after the step (LCPO's ε): they
come from the training passes and are folded once the last micro-batch is done. Either way sums are added
over micro-batches and all-reduced across processes like the normalisers, and per-example rows are
gathered in the global batch's order (``train/step_statistics.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch

from alignlab.data.batching import Batch, make_batch, split_by_tokens
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.objectives.compose import BatchTotals
from alignlab.scoring.scores import Scores
from alignlab.train.context import LoopContext
from alignlab.train.source import StepBatch
from alignlab.train.step_statistics import StepCollector


class TrainingStopped(RuntimeError):
    """Training stopped on a non-finite loss; the message names the step, batch and last checkpoint."""


# Online (rollout) training on CPU with neither micro-batch setting: forward passes of at most this many
# positions. A rollout step holds K completions of every prompt (the GRPO bench: 4 prompts x 8 x 32 tokens,
# ~1100 positions), so one pass saves activations for all of them; cut at 512 the peak stays bounded (bench,
# short prompts: 0.70-0.74x -> ~0.5x TRL's) at the same work, a CPU matmul over 512 rows being as efficient as
# over 1100. The step's loss does not depend on the cut (module docstring); its float rounding does, which
# is why offline training keeps one pass: its published runs (the quickstart) were measured that way, and
# rounding amplified over hundreds of steps and then through sampling moves their figures (docs/engine.md).
# Not for objectives folded before the step: a cut costs them an extra no-gradient pass.
ONLINE_CPU_MICRO_BATCH_TOKENS = 512


def micro_batch_budget(context: LoopContext) -> int | None:
    """The token budget of a forward pass: ``train.micro_batch_tokens``; else, for online training on CPU
    with no ``micro_batch_size`` and an objective not folded before the step, ``ONLINE_CPU_MICRO_BATCH_TOKENS``;
    else None (one pass, or ``micro_batch_size`` records a pass)."""
    tc = context.config.train
    if tc.micro_batch_tokens:
        return tc.micro_batch_tokens
    online = context.config.online is not None
    if online and tc.micro_batch_size is None and context.device.type == "cpu":
        if not context.objective.folds_step_statistics():
            return ONLINE_CPU_MICRO_BATCH_TOKENS
    return None


def micro_batches(
    context: LoopContext, groups: Sequence[TokenizedGroup], positions: list[int]
) -> list[list[int]]:
    """``positions`` (indices into ``groups``) cut by the token budget (:func:`micro_batch_budget`) or
    ``train.micro_batch_size``."""
    tc = context.config.train
    budget = micro_batch_budget(context)
    if budget:
        return split_by_tokens(list(groups), positions, budget, context.layout)  # type: ignore[arg-type]
    size = tc.micro_batch_size or len(positions)
    return [positions[i : i + size] for i in range(0, len(positions), size)]


def lay_out(context: LoopContext, records: Sequence[Record], groups: list[TokenizedGroup]) -> Batch:
    tc = context.config.train
    return make_batch(list(records), groups, context.layout, tc.tokens_per_row, context.pad_id)


def score(
    context: LoopContext, batch: Batch, split: str, reference_rows: list[int] | None
) -> tuple[Scores, Batch]:
    """The engine's scores for ``batch`` (on the policy, with gradients when enabled), and the batch on the
    device."""
    batch = batch.to(context.device)
    cache = context.reference_cache.get(split)
    cached = cache.for_groups(reference_rows) if cache is not None and reference_rows is not None else None
    offload = context.config.train.activation_offload and torch.is_grad_enabled()
    saved_on_cpu = (
        torch.autograd.graph.save_on_cpu(pin_memory=context.device.type == "cuda")
        if offload
        else nullcontext()
    )
    with context.accelerator.autocast(), saved_on_cpu:
        return context.scorer(batch, context.needs, context.reference, cached), batch


def global_totals(context: LoopContext, batches: list[Batch]) -> BatchTotals:
    """The objective's normalisers summed over ``batches`` and over every process."""
    totals = [context.objective.totals(b.feedback, b.lengths) for b in batches]
    summed = totals[0]
    for more in totals[1:]:
        summed = summed + more
    if context.accelerator.num_processes > 1:
        vector = context.accelerator.reduce(summed.as_tensor().to(context.device), reduction="sum")
        summed = BatchTotals.from_tensor(vector.cpu())
    return summed


def fold_before_step(
    context: LoopContext, cuts: list[list[int]], batches: list[Batch], rows: list[int] | None
) -> list[dict[int, torch.Tensor]]:
    """A no-gradient pass over every micro-batch (of every process) folds the statistics of the parts
    folded before the step; returns each micro-batch's per-example results."""
    collector = StepCollector(context, after_step=False)
    with torch.no_grad():
        for cut, batch in zip(cuts, batches):
            scores, on_device = score(
                context, batch, "train", [rows[p] for p in cut] if rows is not None else None
            )
            collector.add(cut, scores, on_device.feedback)
    return collector.fold()


def train_step(
    context: LoopContext, step_batch: StepBatch, step: int, last_checkpoint: Callable[[], str]
) -> dict[str, float]:
    """Forward and backward over the step's micro-batches (no optimiser step); returns the step's metrics.
    ``last_checkpoint()`` names the last good checkpoint for the message of a non-finite loss."""
    acc = context.accelerator
    rank, world = acc.process_index, acc.num_processes
    local = list(range(rank, len(step_batch.groups), world))
    cuts = micro_batches(context, step_batch.groups, local)
    batches = [lay_out(context, step_batch.records, [step_batch.groups[i] for i in cut]) for cut in cuts]
    totals = global_totals(context, batches)
    rows = step_batch.reference_rows
    objective = context.objective
    fold_here = objective.folds_step_statistics()  # before the loss, from the training pass if it is the step
    results: list[dict[int, torch.Tensor]] = [{} for _ in cuts]
    if fold_here and (world > 1 or len(cuts) > 1):
        results = fold_before_step(context, cuts, batches, rows)
        fold_here = False
    after = (
        StepCollector(context, after_step=True) if objective.folds_step_statistics(after_step=True) else None
    )
    metrics: dict[str, float] = {}
    loss_sum = 0.0
    for i, (cut, batch) in enumerate(zip(cuts, batches)):
        scores, batch = score(context, batch, "train", [rows[p] for p in cut] if rows is not None else None)
        if fold_here:  # one micro-batch on one process: its training pass is the whole step
            collector = StepCollector(context, after_step=False)
            collector.add(cut, scores, batch.feedback)
            results = collector.fold()
        if after is not None:
            after.add(cut, scores, batch.feedback)
        loss, part_metrics = context.objective(scores, batch.feedback, True, totals, results[i])
        if not torch.isfinite(loss):
            shown = batch.record_indices[:8]
            raise TrainingStopped(
                f"non-finite loss ({float(loss.detach())}) at step {step}, batch of records "
                f"{shown}{'...' if len(batch.record_indices) > 8 else ''}; last good checkpoint: "
                f"{last_checkpoint()}. Lower train.learning_rate or check those records."
            )
        context_manager = acc.no_sync(context.scorer) if i < len(cuts) - 1 else nullcontext()
        with context_manager:
            acc.backward(loss * world if world > 1 else loss)
        loss_sum += float(loss.detach())
        share = len(cut) / len(local)
        for key, value in part_metrics.items():
            metrics[key] = metrics.get(key, 0.0) + float(value) * share
        metrics["tokens"] = metrics.get("tokens", 0.0) + batch.num_tokens
    if after is not None:
        after.fold()
    if world > 1:
        loss_sum = float(acc.reduce(torch.tensor(loss_sum, device=context.device), reduction="sum"))
    return {"loss": loss_sum, "micro_batches": len(cuts), **metrics}
