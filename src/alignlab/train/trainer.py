"""The one training loop: every objective, offline or online, trains through ``Trainer.run``.

    for step: batch = source.next(); scores = engine(policy, batch, needs)
              loss, metrics = objective(scores, batch.feedback); backward; clip; step
              callbacks.on_step_end(step); source.after_optimizer_step(step)

The loop names no method: what a method needs beyond that goes through the callbacks it registers
(``objectives/callbacks.py``), and its data comes from a batch source (``train/source.py``). The pieces:
``setup.py`` (data, policy, reference, optimiser), ``step.py`` (one step, cut into micro-batches and
processes without changing its loss), ``evaluation.py`` (held-out loss), ``reference.py`` (the reference
and its cache), ``checkpoint.py``. Scale-out is accelerate's: each process takes its share of the global
batch and gradients are averaged, so the result equals one process with the same global batch.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alignlab.durable import Interrupted, StopSignals, truncate_jsonl
from alignlab.objectives import Objective
from alignlab.scoring.engine import Engine
from alignlab.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    save_model,
)
from alignlab.train.config import ConfigError, RunConfig, dump_config
from alignlab.train.data import EVAL_PROMPTS, EVAL_RECORDS, write_eval_prompts, write_eval_records
from alignlab.train.evaluation import evaluate, evaluate_with_metrics
from alignlab.train.logger import MetricsLogger, duration
from alignlab.train.online_setup import mix_offline_data, reads_offline_data, rollout_source
from alignlab.train.setup import build_context, build_optimizer, make_accelerator
from alignlab.train.source import BatchSource, OfflineSource, StepBatch
from alignlab.train.step import TrainingStopped, train_step
from alignlab.train.threads import resolve_threads

__all__ = ["RunResult", "StepHook", "Trainer", "TrainingStopped", "train"]

StepHook = Callable[[int], None]
"""Called with the step number after each step's checkpoint (tests use it to kill a run mid-way)."""


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    model_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    eval_before: float | None = None
    eval_after: float | None = None


class Trainer:
    """One run of ``config``. ``resume``: True continues from the latest checkpoint in the run directory, a
    path from that checkpoint (or a run directory's latest); ``source``: the batch source (default: the
    offline dataset of ``data.train``); ``after_step``: hooks called after each step's checkpoint."""

    engine_class: type[Engine] = Engine

    def __init__(
        self,
        config: RunConfig,
        resume: bool | str | Path = False,
        console: Any = None,
        source: BatchSource | None = None,
        after_step: list[StepHook] | None = None,
    ):
        from accelerate.utils import set_seed

        self.config, self.resume = config, bool(resume)
        self.resume_from: Path | None = None
        if not isinstance(resume, bool):
            try:
                self.resume_from = resolve_checkpoint(Path(resume))
            except ValueError as err:
                raise ConfigError(str(err)) from None
        self.run_dir = config.run_dir
        self.checkpoints = self.run_dir / "checkpoints"
        self.source: BatchSource | None = source
        self.after_step = list(after_step or [])
        tc = config.train
        threads, why = resolve_threads(tc.threads)
        if threads:
            # Process-wide: on a shared CPU, fewer threads than cores often beats oversubscription.
            torch.set_num_threads(threads)
        self.accelerator = make_accelerator(tc, str(self.run_dir))
        set_seed(tc.seed)
        self.objective = Objective.from_config(config.objectives)
        self.logger = MetricsLogger(self.run_dir, self.accelerator, enabled=tc.progress, console=console)
        self._check_run_dir()
        self.logger.note(f"torch threads: {torch.get_num_threads()} ({why})")

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
        tc = self.config.train
        world = self.accelerator.num_processes
        if tc.batch_size % world:
            raise ConfigError(
                f"train.batch_size ({tc.batch_size}) must be divisible by the number of processes ({world})"
            )
        if self.source is None:
            self.source = rollout_source(self.config, self.objective, self.logger.note)  # None: offline
        self.context, self.train_data, self.eval_data = build_context(
            self.config, self.accelerator, self.objective, self.logger.note, self.engine_class,
            load_data=self.config.online is None or reads_offline_data(self.source),
        )  # fmt: skip
        if self.source is None:
            self.source = OfflineSource(self.train_data, tc.batch_size, tc.seed)
        elif reads_offline_data(self.source):  # c_rlft: data.train beside the rollouts
            self.source = mix_offline_data(self.source, self.train_data, self.config)
        self.source.start(self.context)
        self.total_steps = tc.steps or self.source.planned_steps(tc.epochs)
        self.optimizer, self.scheduler = build_optimizer(self.context, self.total_steps)

    @property
    def policy(self) -> Any:
        return self.context.policy

    def evaluate(self) -> float | None:
        return evaluate(self.context, self.eval_data)

    # -------------------------------------------------------------------- run
    def run(self) -> RunResult:
        self._setup()
        cfg, acc = self.config, self.accelerator
        start_step = self._resume() if self.resume else 0
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(dump_config(cfg))
            if self.eval_data is not None:
                written = write_eval_prompts(self.eval_data, self.run_dir / EVAL_PROMPTS)
                self.logger.note(f"held-out prompts: {written} written to {self.run_dir / EVAL_PROMPTS}")
                written = write_eval_records(self.eval_data, self.run_dir / EVAL_RECORDS)
                self.logger.note(f"held-out records: {written} written to {self.run_dir / EVAL_RECORDS}")
        acc.init_trackers(cfg.name, config=_flat(cfg.model_dump(mode="json")))
        eval_before = self.evaluate() if start_step == 0 else None
        if eval_before is not None:
            self.logger.log(0, {"eval/loss": eval_before})
        self.policy.train()
        metrics: dict[str, float] = {}
        stop = StopSignals(self._stopping)
        with stop, self.logger.progress(self.total_steps, start_step) as progress:
            for step in range(start_step + 1, self.total_steps + 1):
                metrics = self._step(step)
                if cfg.train.eval_every and step % cfg.train.eval_every == 0:
                    metrics["eval/loss"] = self.evaluate()
                if step % cfg.train.log_every == 0 or step == self.total_steps:
                    self.logger.log(step, metrics)
                progress.advance(metrics)
                if cfg.train.save_every and step % cfg.train.save_every == 0 and step < self.total_steps:
                    self.save(step)
                for hook in self.after_step:
                    hook(step)
                if self._stop_requested(stop) and step < self.total_steps:
                    self._interrupt(step, stop.requested or signal.SIGINT)
        eval_after, eval_metrics = evaluate_with_metrics(self.context, self.eval_data)
        if eval_after is not None:
            metrics["eval/loss"] = eval_after
            held_out = {f"eval/{k}": v for k, v in eval_metrics.items() if k.startswith("rewards/")}
            metrics.update(held_out)
            self.logger.log(self.total_steps, {"eval/loss": eval_after, **held_out})
        self.save(self.total_steps)
        model_dir = self.run_dir / "model"
        if acc.is_main_process:
            started = time.perf_counter()
            save_model(
                self.context.unwrapped_policy(), self.context.tokenizer, model_dir, merge_adapters=True
            )
            self.logger.note(f"model written to {model_dir} in {duration(time.perf_counter() - started)}")
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

    @property
    def layout(self) -> str:
        return self.context.layout

    def _step(self, step: int) -> dict[str, float]:
        """One step of the run: the source's batch, the optimiser step, then the callbacks and the source."""
        batch = self.source.next()
        metrics = self.train_step(batch, step)
        reference = self.context.reference.model if self.context.reference is not None else None
        for callback in self.context.callbacks:
            callback.on_step_end(step, self.context.unwrapped_policy(), reference)
        self.source.after_optimizer_step(step)
        return metrics

    def train_step(self, batch: StepBatch, step: int) -> dict[str, float]:
        """Forward/backward over ``batch``, clip, optimiser and scheduler step; the step's metrics."""
        t0 = time.perf_counter()
        metrics = train_step(self.context, batch, step, self._last_checkpoint)
        if self.config.train.max_grad_norm:
            grad_norm = self.accelerator.clip_grad_norm_(
                self.policy.parameters(), self.config.train.max_grad_norm
            )
            metrics["grad_norm"] = float(grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        metrics["tokens_per_s"] = metrics.get("tokens", 0.0) / max(time.perf_counter() - t0, 1e-9)
        metrics.update(batch.metrics)
        return metrics

    def _last_checkpoint(self) -> str:
        last = latest_checkpoint(self.checkpoints)
        return str(last) if last else "none"

    def _resume(self) -> int:
        last = self.resume_from or latest_checkpoint(self.checkpoints)
        if last is None:
            self.logger.note(f"--resume: no checkpoint in {self.checkpoints}; starting from step 0")
            return 0
        state, objective_state = load_checkpoint(
            last, self.context.unwrapped_policy(), self.optimizer, self.scheduler
        )
        self.source.load_state_dict(state["source"])  # from source.pt (tensors: an online source's rollout)
        self.objective.load_state_dict(objective_state)
        self.logger.note(f"resumed from {last} (step {int(state['step'])})")
        if self.accelerator.is_main_process:
            # Steps after the checkpoint are trained and logged again: drop their old lines.
            dropped = truncate_jsonl(self.run_dir / "metrics.jsonl", "step", int(state["step"]))
            if dropped:
                self.logger.note(f"metrics.jsonl: dropped {dropped} line(s) after step {int(state['step'])}")
        return int(state["step"])

    # ------------------------------------------------------------ interruption
    def _stopping(self, signum: int) -> None:
        # Called from the signal handler: a plain write, not the logger (which may be mid-update).
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        message = f"{name}: stopping after this step and writing a checkpoint (Ctrl-C again aborts now)"
        print("\n" + message, file=sys.stderr, flush=True)

    def _stop_requested(self, stop: StopSignals) -> bool:
        """Whether any process was asked to stop (all processes must stop at the same step)."""
        flag = stop.requested is not None
        if self.accelerator.num_processes > 1:
            device = self.accelerator.device
            flag = bool(self.accelerator.reduce(torch.tensor([int(flag)], device=device), "max").item())
        return flag

    def _interrupt(self, step: int, signum: int) -> None:
        cfg = self.config
        if not (cfg.train.save_every and step % cfg.train.save_every == 0):
            self.save(step)  # (a step that was just checkpointed is not written twice)
        self.accelerator.end_training()
        raise Interrupted(
            signum,
            f"interrupted at step {step} of {self.total_steps}; checkpoint {self.checkpoints / f'step-{step}'}. "
            f"Resume with: alignlab train {self.run_dir / 'config.yaml'} --out {self.run_dir} --resume",
        )

    def save(self, step: int) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            started = time.perf_counter()
            self.logger.note(f"writing checkpoint step-{step} ...")
            state = {"source": self.source.state_dict(), "total_steps": self.total_steps}
            save_checkpoint(
                self.checkpoints,
                step,
                self.context.unwrapped_policy(),
                self.context.tokenizer,
                self.optimizer,
                self.scheduler,
                state,
                self.objective.state_dict(),
                keep=self.config.train.keep_checkpoints,
            )
            self.logger.note(f"checkpoint step-{step} written in {duration(time.perf_counter() - started)}")
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


def train(config: RunConfig, resume: bool | str | Path = False, console: Any = None) -> RunResult:
    return Trainer(config, resume, console).run()
