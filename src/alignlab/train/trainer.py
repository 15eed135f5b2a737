"""The one training loop: every objective, offline or online, trains through ``Trainer.run``.

    for step: ids = source.next(); batch = layout(ids); scores = engine(policy, batch, needs)
              loss, metrics = objective(scores, batch.feedback); backward; clip; step

Scale-out is accelerate's: under ``accelerate launch`` each process takes its share of the global
batch (``ids[rank::world]``) and gradients are averaged, so the result equals one process with the
same global batch.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alignlab.config import ConfigError, RunConfig, dump_config
from alignlab.data.batching import Batch, make_batch, split_by_tokens
from alignlab.data.tokenize import tokenizer_fingerprint
from alignlab.models.loading import frozen_copy, load_causal_lm, load_model, load_tokenizer
from alignlab.objectives import Objective, modifier_catalog
from alignlab.objectives import modifiers as modifier_registry
from alignlab.objectives.views import FeedbackMismatch
from alignlab.scoring.engine import Engine, Reference
from alignlab.scoring.reference_cache import (
    DEFAULT_DIR,
    ReferenceLogps,
    assemble,
    cache_key,
    data_fingerprint,
    model_fingerprint,
)
from alignlab.scoring.scores import FULL_VOCAB_REFERENCE_NEEDS, Scores
from alignlab.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, save_model
from alignlab.train.data import PreparedData, load_data, truncation_of
from alignlab.train.logger import MetricsLogger
from alignlab.train.source import OfflineSource


class TrainingStopped(RuntimeError):
    """Training stopped on a non-finite loss; the message names the step, batch and last checkpoint."""


class PolicyScorer(nn.Module):
    """The policy and the engine as one module, so DDP/FSDP wrappers see the forward pass."""

    def __init__(self, model: Any, engine: Engine):
        super().__init__()
        self.model = model
        self.engine = engine

    def forward(self, batch: Batch, needs: frozenset[str], reference: Any, cached: Scores | None) -> Scores:
        return self.engine(self.model, batch, needs, reference, cached)


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    model_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    eval_before: float | None = None
    eval_after: float | None = None


class Trainer:
    def __init__(self, config: RunConfig, resume: bool = False, console: Any = None):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config, self.resume = config, resume
        self.run_dir = config.run_dir
        self.checkpoints = self.run_dir / "checkpoints"
        tc = config.train
        if tc.threads:
            # Process-wide: on a shared CPU, fewer threads than cores often beats oversubscription.
            torch.set_num_threads(tc.threads)
        cpu = not torch.cuda.is_available()
        mixed = tc.mixed_precision
        if mixed == "auto":
            mixed = "bf16" if not cpu and torch.cuda.is_bf16_supported() else "no"
        log_with = None if tc.tracker == "none" else tc.tracker
        self.accelerator = Accelerator(
            cpu=cpu, mixed_precision=mixed, log_with=log_with, project_dir=str(self.run_dir)
        )
        set_seed(tc.seed)
        self.objective = Objective.from_config(config.objectives)
        self.logger = MetricsLogger(self.run_dir, self.accelerator, enabled=tc.progress, console=console)
        self._check_run_dir()

    # ------------------------------------------------------------------ set-up
    def _check_run_dir(self) -> None:
        has_checkpoints = latest_checkpoint(self.checkpoints) is not None
        if has_checkpoints and not self.resume:
            raise ConfigError(
                f"{self.run_dir} already holds checkpoints: pass --resume to continue that run, "
                "or choose another directory with --out"
            )
        if self.resume and (self.run_dir / "config.yaml").exists():
            old = (self.run_dir / "config.yaml").read_text()
            if old != dump_config(self.config):
                self.logger.note(
                    "warning: the config differs from the one this run started with; resuming anyway"
                )

    def _setup(self) -> None:
        cfg = self.config
        self.tokenizer = load_tokenizer(cfg.model)
        needs = set(self.objective.needs)
        if any(
            p.spec.feedback == "demonstrations" and p.params.get("prompt_loss_weight", 0) > 0
            for p in self.objective.parts
        ):
            needs.add("prompt_logps")
        self.needs = frozenset(needs)
        self.train_data, self.eval_data = load_data(cfg.data, self.tokenizer, self.objective, cfg.train.seed)
        for note in self.train_data.notes + (self.eval_data.notes if self.eval_data else []):
            self.logger.note(note)
        self._check_feedback(self.train_data)
        self.loop_modifiers = self._loop_modifiers()
        if "bvpo_mix" in self.loop_modifiers:
            self._weight_for_bvpo(self.loop_modifiers["bvpo_mix"])
        self.policy = load_model(cfg.model, wants_rewards="rewards" in self.needs)
        if "hft_freeze" in self.loop_modifiers:
            params = self.loop_modifiers["hft_freeze"]
            mask = modifier_catalog.apply_hft_freeze(
                self.policy, int(params["seed"]), float(params["fraction"])
            )
            self.logger.note(f"hft_freeze: {sum(mask.values())} of {len(mask)} parameter tensors frozen")
        self.engine = Engine(
            cfg.train.layout, cfg.train.logits_chunk_size, cfg.train.attention, cfg.train.compile
        )
        self.layout = self.engine.choose_layout(self.policy)
        self.logger.note(f"engine layout: {self.layout}; objective(s): {', '.join(self.objective.names)}")
        self.reference = self._make_reference()
        self.reference_cache: dict[str, ReferenceLogps | None] = {"train": None, "eval": None}
        # A reference that moves (TR-DPO) cannot be cached.
        cacheable = not self.needs & FULL_VOCAB_REFERENCE_NEEDS and "tr_dpo" not in self.loop_modifiers
        if self.reference is not None and cfg.reference.cache and cacheable:
            self.reference_cache["train"] = self._reference_logps(self.train_data)
            if self.eval_data is not None:
                self.reference_cache["eval"] = self._reference_logps(self.eval_data)
            if not self.reference.adapters_off:
                # Every reference log-prob is cached: the reference model's memory goes back.
                self.reference = None
        tc = cfg.train
        world = self.accelerator.num_processes
        if tc.batch_size % world:
            raise ConfigError(
                f"train.batch_size ({tc.batch_size}) must be divisible by the number of processes ({world})"
            )
        self.total_steps = tc.steps or max(
            1, math.ceil(tc.epochs * len(self.train_data.groups) / tc.batch_size)
        )
        params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=tc.learning_rate, betas=tc.adam_betas, weight_decay=tc.weight_decay
        )
        from transformers import get_scheduler

        self.scheduler = get_scheduler(tc.schedule, self.optimizer, tc.warmup_steps, self.total_steps)
        self.scorer = PolicyScorer(self.policy, self.engine)
        # The scheduler stays unprepared: accelerate would step it once per process.
        self.scorer, self.optimizer = self.accelerator.prepare(self.scorer, self.optimizer)
        self.source = OfflineSource(len(self.train_data.groups), tc.batch_size, tc.seed)

    def _check_feedback(self, data: PreparedData) -> None:
        if not data.groups:
            raise ConfigError(
                f"data.train '{self.config.data.train}' has no usable records ("
                + "; ".join(data.report.lines())
                + ")"
            )
        probe = make_batch(data.records, data.groups[: min(8, len(data.groups))], "separate")
        from alignlab.objectives.views import build_view

        fake = Scores(logps=torch.zeros(probe.num_completions), lengths=torch.ones(probe.num_completions))
        for part in self.objective.parts:
            try:
                build_view(part.spec.feedback, fake, probe.feedback)
            except FeedbackMismatch as err:
                raise ConfigError(f"objective '{part.spec.name}': {err}") from None

    def _loop_modifiers(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for part in self.objective.parts:
            out.update(modifier_registry.loop_modifiers(part.modifiers))
        if "tr_dpo" in out and self.config.model.lora is not None:
            raise ConfigError(
                "modifier 'tr_dpo' syncs a separate reference model; it cannot be used with model.lora"
            )
        return out

    def _weight_for_bvpo(self, params: dict[str, Any]) -> None:
        """BVPO: reweight records so the loss is α·(trace pairs) + (1-α)·(empty-trace pairs, meta.role)."""
        for label, data in (("train", self.train_data), ("eval", self.eval_data)):
            if data is None:
                continue
            used = sorted({g.record_index for g in data.groups})
            empty = [data.records[i].meta.get("role") == params["role"] for i in used]
            try:
                weights = modifier_catalog.bvpo_record_weights(empty, float(params["alpha"]))
            except ValueError as err:
                raise ConfigError(f"{label} data: {err}") from None
            for i, w in zip(used, weights):
                data.records[i].weight *= w
            self.logger.note(
                f"bvpo_mix ({label}): {len(used) - sum(empty)} trace pairs, {sum(empty)} empty-trace pairs "
                f"(meta.role '{params['role']}'), alpha {params['alpha']}"
            )

    def _make_reference(self) -> Reference | None:
        if not self.objective.uses_reference:
            self.logger.note("no objective uses a reference policy: no reference model loaded")
            return None
        cfg = self.config
        if "salsa_soup_ref" in self.loop_modifiers:
            params = self.loop_modifiers["salsa_soup_ref"]
            models = [
                load_causal_lm(cfg.model.model_copy(update={"path": p, "lora": None}), False)
                for p in params["paths"]
            ]
            soup = modifier_catalog.soup_reference(
                [m.state_dict() for m in models], params.get("weights") or None
            )
            models[0].load_state_dict(soup)
            self.logger.note(f"salsa_soup_ref: reference = weight average of {len(models)} models")
            return Reference(frozen_copy(models[0]))
        if cfg.reference.path:
            settings = cfg.model.model_copy(update={"path": cfg.reference.path, "lora": None})
            model = load_causal_lm(settings, for_training=False)
            model.eval().requires_grad_(False)
            return Reference(model)
        if cfg.model.lora is not None:
            return Reference(self.policy, adapters_off=True)
        return Reference(frozen_copy(self.policy))

    def _reference_logps(self, data: PreparedData) -> ReferenceLogps:
        with_tokens = "token_logps" in self.needs
        key = cache_key(
            data_fingerprint(data.groups),
            model_fingerprint(self.reference.model, self.reference.adapters_off),
            tokenizer_fingerprint(self.tokenizer, truncation_of(self.config.data)) + self.layout,
            with_tokens,
        )
        directory = Path(self.config.reference.cache_dir) if self.config.reference.cache_dir else DEFAULT_DIR
        path = directory / f"{key}.safetensors"
        if path.exists():
            self.logger.note(f"reference log-probs: cached ({path})")
            return ReferenceLogps.load(path)
        per_group = []
        device = self.accelerator.device
        for ids in self._reference_chunks(data):
            groups = [data.groups[i] for i in ids]
            batch = make_batch(
                data.records, groups, self.layout, self.config.train.tokens_per_row, self._pad_id
            ).to(device)
            scores = self.engine.reference_scores(
                self.reference, batch, frozenset({"token_logps"} if with_tokens else ())
            )
            offsets = torch.tensor([0] + [len(g.completion_ids) for g in groups]).cumsum(0)
            for i in range(len(groups)):
                per_group.append(
                    scores.index(torch.arange(offsets[i], offsets[i + 1], device=scores.logps.device))
                )
        table = assemble(per_group, with_tokens)
        if self.accelerator.is_main_process:
            cfg = self.config
            about = {
                "run": cfg.name,
                "model": cfg.reference.path or cfg.model.path,
                "data": cfg.data.train if data is self.train_data else (cfg.data.eval or cfg.data.train),
                "records": len(data.groups),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            table.save(path, about)
        self.logger.note(f"reference log-probs: computed for {len(data.groups)} records, cached at {path}")
        return table

    def _reference_chunks(self, data: PreparedData) -> list[list[int]]:
        """Groups per reference pass: no gradients are kept, so four times a training pass."""
        ids = list(range(len(data.groups)))
        tc = self.config.train
        if tc.micro_batch_tokens:
            return split_by_tokens(data.groups, ids, 4 * tc.micro_batch_tokens, self.layout)
        size = 4 * (tc.micro_batch_size or tc.batch_size)
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    # ------------------------------------------------------------------- steps
    def _micro_batches(self, ids: list[int]) -> list[list[int]]:
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        local = ids[rank::world]
        tc = self.config.train
        if tc.micro_batch_tokens:
            return split_by_tokens(self.train_data.groups, local, tc.micro_batch_tokens, self.layout)
        size = tc.micro_batch_size or len(local)
        return [local[i : i + size] for i in range(0, len(local), size)]

    def _score(self, data: PreparedData, ids: list[int], split: str) -> tuple[Scores, Batch]:
        batch = make_batch(
            data.records,
            [data.groups[i] for i in ids],
            self.layout,
            self.config.train.tokens_per_row,
            self._pad_id,
        ).to(self.accelerator.device)
        cache = self.reference_cache[split]
        cached = cache.for_groups(ids) if cache is not None else None
        offload = self.config.train.activation_offload and torch.is_grad_enabled()
        saved_on_cpu = (
            torch.autograd.graph.save_on_cpu(pin_memory=self.accelerator.device.type == "cuda")
            if offload
            else nullcontext()
        )
        with self.accelerator.autocast(), saved_on_cpu:
            scores = self.scorer(batch, self.needs, self.reference, cached)
        return scores, batch

    def train_step(self, ids: list[int], step: int) -> dict[str, float]:
        micro = self._micro_batches(ids)
        local_groups = sum(len(m) for m in micro)
        totals: dict[str, float] = {}
        loss_sum = 0.0
        for i, mids in enumerate(micro):
            scores, batch = self._score(self.train_data, mids, "train")
            loss, metrics = self.objective(scores, batch.feedback)
            if not torch.isfinite(loss):
                last = latest_checkpoint(self.checkpoints)
                raise TrainingStopped(
                    f"non-finite loss ({float(loss.detach())}) at step {step}, batch of records "
                    f"{batch.record_indices[:8]}{'...' if len(batch.record_indices) > 8 else ''}; last good "
                    f"checkpoint: {last or 'none'}. Lower train.learning_rate or check those records."
                )
            share = len(mids) / local_groups
            sync = i == len(micro) - 1
            context = self.accelerator.no_sync(self.scorer) if not sync else nullcontext()
            with context:
                self.accelerator.backward(loss * share)
            loss_sum += float(loss.detach()) * share
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + float(v) * share
            totals["tokens"] = totals.get("tokens", 0.0) + batch.num_tokens
        grad_norm = None
        if self.config.train.max_grad_norm:
            grad_norm = self.accelerator.clip_grad_norm_(
                self.policy.parameters(), self.config.train.max_grad_norm
            )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        out = {"loss": loss_sum, "lr": self.scheduler.get_last_lr()[0], "micro_batches": len(micro), **totals}
        if grad_norm is not None:
            out["grad_norm"] = float(grad_norm)
        return out

    @torch.no_grad()
    def evaluate(self) -> float | None:
        if self.eval_data is None or not self.eval_data.groups:
            return None
        was_training = self.policy.training
        self.policy.eval()
        total, count = 0.0, 0
        size = self.config.train.micro_batch_size or self.config.train.batch_size
        n = len(self.eval_data.groups)
        for start in range(0, n, size):
            ids = list(range(start, min(n, start + size)))
            scores, batch = self._score(self.eval_data, ids, "eval")
            loss, _ = self.objective(scores, batch.feedback)
            total += float(loss) * len(ids)
            count += len(ids)
        self.policy.train(was_training)
        return total / count

    # -------------------------------------------------------------------- run
    def run(self) -> RunResult:
        self._setup()
        cfg = self.config
        acc = self.accelerator
        start_step = 0
        if self.resume:
            last = latest_checkpoint(self.checkpoints)
            if last is None:
                self.logger.note(f"--resume: no checkpoint in {self.checkpoints}; starting from step 0")
            else:
                state, objective_state = load_checkpoint(
                    last, acc.unwrap_model(self.scorer).model, self.optimizer, self.scheduler
                )
                start_step = int(state["step"])
                self.source.load_state_dict(state["source"])
                self.objective.load_state_dict(objective_state)
                self.logger.note(f"resumed from {last} (step {start_step})")
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(dump_config(cfg))
        acc.init_trackers(cfg.name, config=_flat(cfg.model_dump(mode="json")))
        eval_before = self.evaluate() if start_step == 0 else None
        if eval_before is not None:
            self.logger.log(0, {"eval/loss": eval_before})
        self.policy.train()
        kill_at = int(os.environ.get("ALIGNLAB_TEST_KILL_AT_STEP", "0"))
        metrics: dict[str, float] = {}
        with self.logger.progress(self.total_steps, start_step) as progress:
            for step in range(start_step + 1, self.total_steps + 1):
                t0 = time.perf_counter()
                metrics = self.train_step(self.source.next(), step)
                elapsed = time.perf_counter() - t0
                metrics["tokens_per_s"] = metrics.get("tokens", 0.0) / max(elapsed, 1e-9)
                metrics["epoch"] = self.source.epochs_done
                if cfg.train.eval_every and step % cfg.train.eval_every == 0:
                    metrics["eval/loss"] = self.evaluate()
                if step % cfg.train.log_every == 0 or step == self.total_steps:
                    self.logger.log(step, metrics)
                progress.advance(metrics)
                self._on_step_end(step)
                if cfg.train.save_every and step % cfg.train.save_every == 0 and step < self.total_steps:
                    self.save(step)
                if kill_at and step == kill_at:  # tests: a real SIGKILL after this step's checkpoint
                    os.kill(os.getpid(), signal.SIGKILL)
        eval_after = self.evaluate()
        if eval_after is not None:
            metrics["eval/loss"] = eval_after
            self.logger.log(self.total_steps, {"eval/loss": eval_after})
        self.save(self.total_steps)
        model_dir = self.run_dir / "model"
        if acc.is_main_process:
            save_model(acc.unwrap_model(self.scorer).model, self.tokenizer, model_dir, merge_adapters=True)
            summary = {
                "steps": self.total_steps,
                "eval_before": eval_before,
                "eval_after": eval_after,
                **metrics,
            }
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        acc.wait_for_everyone()
        acc.end_training()
        return RunResult(self.run_dir, self.total_steps, model_dir, metrics, eval_before, eval_after)

    def _on_step_end(self, step: int) -> None:
        sync = self.loop_modifiers.get("tr_dpo")
        if sync and modifier_catalog.tr_dpo_due(step, int(sync["sync_steps"])):
            reference = dict(self.reference.model.named_parameters())
            policy = dict(self.accelerator.unwrap_model(self.scorer).model.named_parameters())
            modifier_catalog.tr_dpo_update(reference, policy, float(sync["alpha"]), sync["mode"])

    def save(self, step: int) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            state = {"source": self.source.state_dict(), "total_steps": self.total_steps}
            save_checkpoint(
                self.checkpoints,
                step,
                acc.unwrap_model(self.scorer).model,
                self.tokenizer,
                self.optimizer,
                self.scheduler,
                state,
                self.objective.state_dict(),
                keep=self.config.train.keep_checkpoints,
            )
        acc.wait_for_everyone()


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A config as flat scalar hyper-parameters ("train.learning_rate": 1e-5), as trackers expect."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, (int, float, str, bool)):
            out[name] = value
        elif value is not None:
            out[name] = json.dumps(value)
    return out


def train(config: RunConfig, resume: bool = False, console: Any = None) -> RunResult:
    return Trainer(config, resume, console).run()
