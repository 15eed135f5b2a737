"""Held-out loss: the objective over the whole evaluation split, cut into chunks like a training step (the
normalisers are the whole split's, so the result does not depend on the chunk size), with the objectives'
running state read but never moved (``training=False``)."""

from __future__ import annotations

import torch

from alignlab.train.context import LoopContext
from alignlab.train.data import PreparedData
from alignlab.train.step import lay_out, score


def evaluate(context: LoopContext, data: PreparedData | None) -> float | None:
    """The held-out loss (None without held-out data)."""
    return evaluate_with_metrics(context, data)[0]


@torch.no_grad()
def evaluate_with_metrics(
    context: LoopContext, data: PreparedData | None
) -> tuple[float | None, dict[str, float]]:
    """The held-out loss and the objective's metrics over the whole split (each chunk's mean weighted by
    its number of records, e.g. ``rewards/accuracies``: the share of held-out pairs whose chosen answer
    has the higher implicit reward)."""
    if data is None or not data.groups:
        return None, {}
    policy = context.policy
    was_training = policy.training
    policy.eval()
    tc = context.config.train
    size = tc.micro_batch_size or tc.batch_size
    n = len(data.groups)
    chunks = [list(range(start, min(n, start + size))) for start in range(0, n, size)]
    batches = [lay_out(context, data.records, [data.groups[i] for i in ids]) for ids in chunks]
    totals = context.objective.totals(batches[0].feedback, batches[0].lengths)
    for batch in batches[1:]:
        totals = totals + context.objective.totals(batch.feedback, batch.lengths)
    total = 0.0
    sums: dict[str, float] = {}
    for ids, batch in zip(chunks, batches):
        scores, batch = score(context, batch, "eval", ids)
        loss, metrics = context.objective(scores, batch.feedback, False, totals)
        total += float(loss)
        for name, value in metrics.items():
            if value is not None and getattr(value, "numel", lambda: 1)() == 1:
                sums[name] = sums.get(name, 0.0) + float(value) * len(ids)
    policy.train(was_training)
    return total, {name: value / n for name, value in sums.items()}
