"""Score (prompt, completion) rows with the engine, in chunks, without gradients.

Judges (reward models, preference models, implicit rewards) and evaluation (KL to a reference) all turn
a list of prompts and a parallel list of completions into ``Scores``; this is the one place that
tokenises such rows, batches them in the engine's layout and runs the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import Truncation, tokenize_records
from alignlab.models.parts import unwrap
from alignlab.scoring.engine import Engine
from alignlab.scoring.scores import Scores


def default_truncation(model: Any, max_length: int | None = None) -> Truncation:
    """The tokenizer limits, kept within the body's position table (512 for MiniLM/BERT)."""
    limit = getattr(unwrap(model).config, "max_position_embeddings", None) or 1024
    length = min(max_length or 1024, int(limit))
    return Truncation(max_length=length, max_prompt_length=max(1, length // 2))


@torch.no_grad()
def score_rows(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    completions: Sequence[str],
    needs: frozenset[str] = frozenset(),
    batch_size: int = 16,
    truncation: Truncation | None = None,
    layout: str = "auto",
    add_eos: bool = True,
    contexts: Sequence[str | None] | None = None,
) -> Scores:
    """Scores of each completion given its prompt, flat [N], in input order. ``contexts``: text placed between
    each prompt and its completion that the completion attends to but that is not scored (the training layout
    of context-conditioned objectives)."""
    if len(prompts) != len(completions):
        raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
    if contexts is not None and len(contexts) != len(completions):
        raise ValueError(f"got {len(contexts)} contexts but {len(completions)} completions")
    records = [
        Record(p, [c], context_prefixes=[contexts[i]] if contexts is not None else None)
        for i, (p, c) in enumerate(zip(prompts, completions))
    ]
    groups, report = tokenize_records(records, tokenizer, truncation or default_truncation(model), add_eos)
    if len(groups) != len(records):
        raise ValueError("some completions could not be scored: " + "; ".join(report.lines()))
    engine = Engine(layout)
    chosen = engine.choose_layout(model)
    device = next(unwrap(model).parameters()).device
    pad = int(tokenizer.pad_token_id or 0)
    was_training = model.training
    model.eval()
    parts: list[Scores] = []
    try:
        for start in range(0, len(groups), batch_size):
            chunk = groups[start : start + batch_size]
            batch = make_batch(records, chunk, chosen, pad_id=pad).to(device)
            parts.append(engine(model, batch, needs).map(lambda t: t.detach().float().cpu()))
    finally:
        model.train(was_training)
    return concat_scores(parts)


def concat_scores(parts: list[Scores]) -> Scores:
    first = parts[0]
    out = {}
    for name in ("logps", "lengths", "rewards", "hidden"):
        values = [getattr(p, name) for p in parts]
        out[name] = torch.cat(values) if values[0] is not None else None
    token = [p.token_logps for p in parts]
    scores = Scores(**out)
    if first.token_logps is not None:
        width = max(t.shape[1] for t in token)
        pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
        scores.token_logps = torch.cat([pad(t) for t in token])
        scores.token_mask = torch.cat([pad(p.token_mask) for p in parts])
    return scores
