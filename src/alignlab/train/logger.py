"""Metrics to ``metrics.jsonl`` and the chosen tracker, notes to the console, a rich progress bar."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class MetricsLogger:
    def __init__(self, run_dir: Path, accelerator: Any, enabled: bool = True, console: Console | None = None):
        self.run_dir = run_dir
        self.accelerator = accelerator
        self.enabled = enabled and accelerator.is_main_process
        self.console = console or Console(stderr=True)
        self.start = time.time()

    def note(self, text: str) -> None:
        """One line of plain text (brackets print as written). Written to a file or pipe it stays one line,
        so that it greps whole; a terminal wraps it at its width."""
        if self.accelerator.is_main_process:
            line = Text.assemble(("alignlab:", "dim"), " ", text)
            self.console.print(line, soft_wrap=not self.console.is_terminal)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.accelerator.is_main_process:
            return
        clean = {k: _plain(v) for k, v in metrics.items() if v is not None}
        record = {"step": step, "time": round(time.time() - self.start, 3), **clean}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.accelerator.log({k: v for k, v in clean.items() if isinstance(v, (int, float))}, step=step)

    @contextmanager
    def progress(self, total: int, start: int) -> Iterator[Any]:
        if not self.enabled:
            yield _Silent()
            return
        bar = Progress(
            TextColumn("[bold]train[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        with bar:
            task = bar.add_task("", total=total, completed=start)
            yield _Advance(bar, task)


def _plain(value: Any) -> Any:
    value = float(value) if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class _Advance:
    def __init__(self, bar: Progress, task: Any):
        self.bar, self.task = bar, task

    def advance(self, metrics: dict[str, Any]) -> None:
        shown = f"loss {metrics.get('loss', float('nan')):.4f}"
        if metrics.get("reward/mean") is not None:  # online training: the rollouts' reward and count
            shown += f"  reward {metrics['reward/mean']:.3f}  rollout {int(metrics.get('rollout/index', 0))}"
        if metrics.get("eval/loss") is not None:
            shown += f"  eval {metrics['eval/loss']:.4f}"
        self.bar.update(self.task, advance=1, description=shown)


class _Silent:
    def advance(self, metrics: dict[str, Any]) -> None:
        pass


def duration(seconds: float) -> str:
    """``seconds`` as people read a duration: "0.8 s", "42 s", "3 min 05 s", "1 h 02 min"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@contextmanager
def phase_progress(label: str, total: int, enabled: bool, console: Console | None = None) -> Iterator[Any]:
    """A transient progress bar for a phase of ``total`` units (``advance(n)``) on stderr, or nothing."""
    if not enabled:
        yield _SilentPhase()
        return
    bar = Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task("", total=total)
        yield _PhaseAdvance(bar, task)


class _PhaseAdvance:
    def __init__(self, bar: Progress, task: Any):
        self.bar, self.task = bar, task

    def advance(self, n: int = 1) -> None:
        self.bar.update(self.task, advance=n)


class _SilentPhase:
    def advance(self, n: int = 1) -> None:
        pass
