"""Set a run up: the accelerator, the data (with the callbacks' ``on_data``), the policy (with
``on_policy``), the engine, the reference and its cached log-probs, the optimiser and the scheduler."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from alignlab.data.batching import make_batch
from alignlab.models.loading import load_model, load_tokenizer
from alignlab.objectives import Objective
from alignlab.objectives.callbacks import Callback, DataContext
from alignlab.objectives.views import FeedbackMismatch, build_view
from alignlab.scoring.engine import Engine
from alignlab.scoring.reference_cache import ReferenceLogps
from alignlab.scoring.scores import Scores
from alignlab.train.config import ConfigError, RunConfig
from alignlab.train.context import LoopContext, PolicyScorer
from alignlab.train.data import PreparedData, check_batch_fits, load_data
from alignlab.train.reference import (
    check_reference_settings,
    make_reference,
    reference_is_cacheable,
    reference_logps,
)
from alignlab.train.schedule import learning_rate_schedule
from alignlab.train.settings import TrainSettings

Note = Callable[[str], None]


def make_accelerator(tc: TrainSettings, project_dir: str) -> Any:
    from accelerate import Accelerator

    cpu = not torch.cuda.is_available()
    mixed = tc.mixed_precision
    if mixed == "auto":
        mixed = "bf16" if not cpu and torch.cuda.is_bf16_supported() else "no"
    log_with = None if tc.tracker == "none" else tc.tracker
    return Accelerator(cpu=cpu, mixed_precision=mixed, log_with=log_with, project_dir=project_dir)


def prepare_data(
    config: RunConfig,
    tokenizer: Any,
    objective: Objective,
    callbacks: list[Callback],
    note: Note,
    is_main_process: bool = True,
) -> tuple[PreparedData, PreparedData | None]:
    """Read, convert, prepare and tokenise both splits; then every callback's ``on_data``, train first."""
    shown = config.train.progress and is_main_process
    train, evaluation = load_data(config.data, tokenizer, objective, config.train.seed, progress=shown)
    for line in train.notes + (evaluation.notes if evaluation else []):
        note(line)
    check_feedback(config, objective, train)
    fits = check_batch_fits(len(train.groups), config.train.batch_size)
    if fits:
        note(fits)
    embed = Encoders()
    for split, data in (("train", train), ("eval", evaluation)):
        if data is None:
            continue
        used = sorted({g.record_index for g in data.groups})
        context = DataContext(split, data.records, used, train.records, embed)
        for callback in callbacks:
            try:
                lines = callback.on_data(context)
            except ValueError as err:
                raise ConfigError(f"{split} data: {err}") from None
            for line in lines:
                note(line)
    return train, evaluation


class Encoders:
    """``embed(texts, encoder)`` for the callbacks' :class:`DataContext`: each encoder loaded once."""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}

    def __call__(self, texts: Sequence[str], encoder: str) -> torch.Tensor:
        from alignlab.models.embedding import TextEncoder

        if encoder not in self.loaded:
            self.loaded[encoder] = TextEncoder(encoder)
        return self.loaded[encoder].embed(texts)


def check_feedback(config: RunConfig, objective: Objective, data: PreparedData) -> None:
    """Every objective can read the feedback the data carries (checked on a probe batch, before training)."""
    if not data.groups:
        raise ConfigError(
            f"data.train '{config.data.train}' has no usable records (" + "; ".join(data.report.lines()) + ")"
        )
    probe = make_batch(data.records, data.groups[: min(8, len(data.groups))], "separate")
    fake = Scores(logps=torch.zeros(probe.num_completions), lengths=torch.ones(probe.num_completions))
    for part in objective.parts:
        try:
            build_view(part.spec.feedback, fake, probe.feedback)
        except FeedbackMismatch as err:
            raise ConfigError(f"objective '{part.spec.name}': {err}") from None


def build_context(
    config: RunConfig,
    accelerator: Any,
    objective: Objective,
    note: Note,
    engine_class: type[Engine] = Engine,
    load_data: bool = True,
) -> tuple[LoopContext, PreparedData | None, PreparedData | None]:
    """Everything but the optimiser: tokenizer, data, policy, engine, reference (and its cache).
    ``load_data`` False: the batch source brings its own data (online training), ``data:`` is not read."""
    callbacks = objective.callbacks
    check_reference_settings(config, callbacks)
    tokenizer = load_tokenizer(config.model)
    needs = objective.needs
    train, evaluation = (
        prepare_data(config, tokenizer, objective, callbacks, note, accelerator.is_main_process)
        if load_data
        else (None, None)
    )
    policy = load_model(config.model, wants_rewards="rewards" in needs)
    if config.model.train_top_layers:
        trained = sum(p.numel() for p in policy.parameters() if p.requires_grad)
        total = sum(p.numel() for p in policy.parameters())
        note(f"model.train_top_layers: {trained / 1e6:.2f}M of {total / 1e6:.2f}M parameters train")
    for callback in callbacks:
        for line in callback.on_policy(policy):
            note(line)
    tc = config.train
    # Online training scores at the sampling temperature (log softmax(z / T), as TRL and verl do), so the
    # importance ratio of a freshly sampled rollout is exactly 1.
    sampled_at = config.online.sampling.temperature if config.online is not None else 1.0
    temperature = sampled_at if sampled_at > 0 else 1.0
    # Online training on CPU computes attention branch by branch (scoring/branch_attention.py): a rollout's
    # groups are one prompt and K completions, where the dense mask computes ~6x the visible pairs (GRPO
    # bench, short prompts; docs/performance.md). Offline training keeps per-segment SDPA: a change of
    # kernel changes float rounding, and its published runs (the quickstart) were measured with that one.
    auto_cpu = "branch" if config.online is not None else "segment"
    engine = engine_class(
        tc.layout,
        tc.logits_chunk_size,
        tc.attention,
        tc.compile,
        temperature=temperature,
        auto_cpu_attention=auto_cpu,
    )
    layout = engine.choose_layout(policy)
    note(f"engine layout: {layout}; objective(s): {', '.join(objective.names)}")
    reference = None
    if objective.uses_reference:
        reference = make_reference(config, policy, callbacks, note)
    elif config.online is None:  # online runs load it with the rollout source when the KL term needs it
        note("no objective uses a reference policy: no reference model loaded")
    cache: dict[str, ReferenceLogps | None] = {"train": None, "eval": None}
    # online runs score new samples every rollout: nothing to cache ahead, the reference stays loaded
    if reference is not None and config.online is None and reference_is_cacheable(config, needs, callbacks):
        for split, data in (("train", train), ("eval", evaluation)):
            if data is not None:
                cache[split] = reference_logps(
                    config, engine, reference, data, split, tokenizer, layout, "token_logps" in needs,
                    accelerator.device, accelerator.is_main_process, note,
                )  # fmt: skip
        if not reference.adapters_off:
            reference = None  # every reference log-prob is cached: the reference model's memory goes back
    context = LoopContext(
        config=config,
        accelerator=accelerator,
        objective=objective,
        callbacks=callbacks,
        tokenizer=tokenizer,
        needs=needs,
        policy=policy,
        engine=engine,
        layout=layout,
        scorer=PolicyScorer(policy, engine),
        reference=reference,
        reference_cache=cache,
    )
    return context, train, evaluation


# Devices torch has a fused AdamW kernel for.
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def fused_adamw(context: LoopContext, params: list[Any]) -> bool:
    """Whether AdamW runs as torch's fused kernel: for online training, one pass over each parameter instead of
    about ten elementwise operations (TRL's default, ``adamw_torch_fused``, since torch 2.8): the GRPO bench's
    5.6M-parameter model on one CPU thread, 28 -> 5 ms per step. The same update up to float rounding; offline
    training keeps the per-tensor loop, with which its published runs (the quickstart) were measured."""
    if context.config.online is None or not params:
        return False
    return all(p.is_floating_point() and p.device.type in FUSED_ADAMW_DEVICES for p in params)


def build_optimizer(context: LoopContext, total_steps: int) -> tuple[Any, Any]:
    """AdamW over the trainable parameters and the schedule; the scorer and optimiser go through
    accelerate (the scheduler stays unprepared: accelerate would step it once per process)."""
    tc = context.config.train
    params = [p for p in context.policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params,
        lr=tc.learning_rate,
        betas=tc.adam_betas,
        weight_decay=tc.weight_decay,
        fused=fused_adamw(context, params) or None,
    )
    scheduler = learning_rate_schedule(optimizer, tc.schedule, tc.warmup_steps, total_steps)
    context.scorer, optimizer = context.accelerator.prepare(context.scorer, optimizer)
    return optimizer, scheduler
