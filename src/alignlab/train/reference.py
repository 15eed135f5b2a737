"""The reference policy of a run: which model it is, and its log-probs cached once per data and model.

The reference is, in order: the model a callback builds (SALSA's weight soup), ``reference.path``, the
policy's base with LoRA adapters off, or a frozen copy of the policy. Its log-probs are computed once per
(data, model, tokenizer) fingerprint and cached on disk, unless a callback moves the reference during
training (TR-DPO) or an objective needs the reference's full distribution at every token (token KL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from alignlab.data.batching import make_batch, split_by_tokens
from alignlab.data.tokenize import tokenizer_fingerprint
from alignlab.models.loading import frozen_copy, load_causal_lm
from alignlab.objectives.callbacks import Callback
from alignlab.scoring.cache_store import default_dir
from alignlab.scoring.engine import Engine, Reference
from alignlab.scoring.reference_cache import (
    ReferenceLogps,
    assemble,
    cache_key,
    data_fingerprint,
    model_fingerprint,
)
from alignlab.scoring.scores import FULL_VOCAB_REFERENCE_NEEDS, Scores
from alignlab.train.config import ConfigError, RunConfig
from alignlab.train.data import PreparedData, truncation_of
from alignlab.train.logger import duration, phase_progress


def check_reference_settings(config: RunConfig, callbacks: list[Callback]) -> None:
    for callback in callbacks:
        if callback.needs_separate_reference and config.model.lora is not None:
            raise ConfigError(
                f"'{callback.name}' moves a separate reference model; it cannot be used with model.lora"
            )


def make_reference(
    config: RunConfig, policy: Any, callbacks: list[Callback], note: Callable[[str], None]
) -> Reference:
    def load(path: str) -> Any:
        return load_causal_lm(config.model.model_copy(update={"path": path, "lora": None}), False)

    for callback in callbacks:
        try:
            built = callback.build_reference(load)
        except ValueError as err:
            raise ConfigError(f"'{callback.name}': {err}") from None
        if built is not None:
            note(f"{callback.name}: the reference is built by the method")
            return Reference(frozen_copy(built))
    if config.reference.path:
        model = load(config.reference.path)
        model.eval().requires_grad_(False)
        return Reference(model)
    if config.model.lora is not None:
        return Reference(policy, adapters_off=True)
    return Reference(frozen_copy(policy))


def reference_is_cacheable(config: RunConfig, needs: frozenset[str], callbacks: list[Callback]) -> bool:
    moving = any(c.moves_reference for c in callbacks)
    return config.reference.cache and not needs & FULL_VOCAB_REFERENCE_NEEDS and not moving


def reference_logps(
    config: RunConfig,
    engine: Engine,
    reference: Reference,
    data: PreparedData,
    split: str,
    tokenizer: Any,
    layout: str,
    with_tokens: bool,
    device: Any,
    is_main_process: bool,
    note: Callable[[str], None],
) -> ReferenceLogps:
    """The reference's log-probs for every group of ``data``, from the disk cache or computed now."""
    key = cache_key(
        data_fingerprint(data.groups),
        model_fingerprint(reference.model, reference.adapters_off),
        tokenizer_fingerprint(tokenizer, truncation_of(config.data)) + layout,
        with_tokens,
    )
    directory = Path(config.reference.cache_dir) if config.reference.cache_dir else default_dir()
    path = directory / f"{key}.safetensors"
    if path.exists():
        note(f"reference log-probs: cached ({path})")
        return ReferenceLogps.load(path)
    per_group: list[Scores | None] = [None] * len(data.groups)
    pad_id = int(tokenizer.pad_token_id or 0)
    started = time.perf_counter()
    shown = is_main_process and config.train.progress
    with phase_progress(f"reference log-probs ({split})", len(data.groups), shown) as progress:
        for ids in _reference_chunks(config, data, layout):
            groups = [data.groups[i] for i in ids]
            batch = make_batch(data.records, groups, layout, config.train.tokens_per_row, pad_id).to(device)
            needs = frozenset({"token_logps"} if with_tokens else ())
            scores = engine.reference_scores(reference, batch, needs)
            offsets = torch.tensor([0] + [len(g.completion_ids) for g in groups]).cumsum(0)
            # by group index: token-budget chunks come longest first, not in the data's order
            for i, group_index in enumerate(ids):
                per_group[group_index] = scores.index(
                    torch.arange(offsets[i], offsets[i + 1], device=scores.logps.device)
                )
            progress.advance(len(groups))
    assert all(x is not None for x in per_group)
    table = assemble(per_group, with_tokens)  # type: ignore[arg-type]
    if is_main_process:
        about = {
            "run": config.name,
            "model": config.reference.path or config.model.path,
            "data": config.data.train if split == "train" else (config.data.eval or config.data.train),
            "records": len(data.groups),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        table.save(path, about)
    note(
        f"reference log-probs: computed for {len(data.groups)} records in "
        f"{duration(time.perf_counter() - started)}, cached at {path}"
    )
    return table


def _reference_chunks(config: RunConfig, data: PreparedData, layout: str) -> list[list[int]]:
    """Groups per reference pass: no gradients are kept, so four times a training pass."""
    ids = list(range(len(data.groups)))
    tc = config.train
    if tc.micro_batch_tokens:
        return split_by_tokens(data.groups, ids, 4 * tc.micro_batch_tokens, layout)
    size = 4 * (tc.micro_batch_size or tc.batch_size)
    return [ids[i : i + size] for i in range(0, len(ids), size)]
