"""Durable job state: what every long-running command (training, labelling, generation, evaluation) uses
so that a kill, a Ctrl-C or a full disk loses nothing that was reported done.

- :class:`Snapshots` — numbered snapshots in a folder (``step-N/``): each is written into a temporary
  ``.tmp-step-N-PID/`` folder, every file fsynced, a ``manifest.json`` of file sizes added, then renamed
  into place, so a snapshot is either complete or absent. Temporary folders left by a killed writer are
  removed on start and whenever a write fails; a snapshot whose files no longer match its manifest
  (truncated, deleted) is reported and skipped for the previous complete one. Before writing, the free
  space is checked against an estimate, and a full disk raises :class:`DiskFull` naming the folder, the
  space needed and the space free.
- :func:`truncate_jsonl` — when a job resumes from step N, drop the lines of its JSONL log written after
  N (they will be written again), so no step appears twice.
- :class:`StopSignals` — SIGINT/SIGTERM ask the job to stop after the current unit of work (the job
  checks :attr:`StopSignals.requested`, saves a snapshot and raises :class:`Interrupted`); a second Ctrl-C
  aborts at once. :attr:`Interrupted.exit_code` is 130 for SIGINT and 143 for SIGTERM, the shell's
  convention (128 + signal number).

Nothing here knows what a job computes: the caller passes a function that fills a snapshot folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

MANIFEST = "manifest.json"


class DiskFull(OSError):
    """No space to write a snapshot; the message names the folder, the space needed and the space free."""


class Interrupted(Exception):
    """A job stopped on SIGINT/SIGTERM after saving its state; the message says where and how to resume."""

    def __init__(self, signum: int, message: str):
        self.signum = signum
        super().__init__(message)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


class Snapshots:
    """Numbered, atomically written snapshot folders ``<root>/<prefix>-N/`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, prefix: str = "step", keep: int = 2):
        self.root, self.prefix, self.keep = Path(root), prefix, keep

    # ----------------------------------------------------------------------------------------- reading
    def steps(self) -> list[tuple[int, Path]]:
        """Every finished snapshot folder as (step, path), oldest first (not checked)."""
        found = []
        for path in self.root.glob(f"{self.prefix}-*"):
            number = path.name[len(self.prefix) + 1 :]
            if path.is_dir() and number.isdigit():
                found.append((int(number), path))
        return sorted(found)

    def problem(self, path: Path) -> str | None:
        """Why the snapshot at ``path`` is damaged (a file missing or of the wrong size), or None."""
        manifest = path / MANIFEST
        if not manifest.exists():
            return None  # written before manifests existed: trusted as it was
        try:
            sizes = json.loads(manifest.read_text())
        except (OSError, ValueError) as err:
            return f"its {MANIFEST} cannot be read ({err})"
        for name, size in sizes.items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != size:
                return f"{name} has {file.stat().st_size} bytes, {size} were written"
        return None

    def latest(self, check: Callable[[Path], str | None] | None = None) -> tuple[Path | None, list[str]]:
        """The newest complete snapshot and a note for each newer damaged one that was skipped."""
        notes = []
        for _, path in reversed(self.steps()):
            reason = self.problem(path) or (check(path) if check else None)
            if reason is None:
                return path, notes
            notes.append(f"{path} is damaged ({reason}); using the previous complete snapshot")
        return None, notes

    def candidates(self) -> Iterator[Path]:
        """Complete snapshots newest first, warning about each damaged one passed over (for resuming: try
        to load each in turn, so one that fails to load also falls back to the one before)."""
        for _, path in reversed(self.steps()):
            reason = self.problem(path)
            if reason is None:
                yield path
            else:
                warnings.warn(f"{path} is damaged ({reason}); trying the previous snapshot", stacklevel=2)

    # ----------------------------------------------------------------------------------------- writing
    def clean_orphans(self) -> list[Path]:
        """Remove temporary folders that killed writers left behind (they can be as big as a snapshot)."""
        removed = []
        for path in self.root.glob(f".tmp-{self.prefix}-*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def write(self, step: int, fill: Callable[[Path], None], estimate_bytes: int = 0) -> Path:
        """Write snapshot ``step`` by calling ``fill(folder)``, then make it visible atomically.

        ``estimate_bytes`` (what the snapshot will take) is checked against the free space first, so a
        full disk is reported before anything is written.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.clean_orphans()
        self._check_space(estimate_bytes)
        final = self.root / f"{self.prefix}-{step}"
        tmp = self.root / f".tmp-{self.prefix}-{step}-{os.getpid()}"
        try:
            tmp.mkdir(parents=True)
            fill(tmp)
            sizes = {}
            for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
                with open(file, "rb") as f:
                    os.fsync(f.fileno())
                sizes[str(file.relative_to(tmp))] = file.stat().st_size
            _write_synced(tmp / MANIFEST, json.dumps(sizes, indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_dir(self.root)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if is_disk_full(err):
                raise self._disk_full(estimate_bytes) from None
            raise
        self.prune()
        return final

    def prune(self) -> None:
        """Keep the newest ``keep`` complete snapshots (damaged ones are removed first)."""
        steps = self.steps()
        complete = [(s, p) for s, p in steps if self.problem(p) is None]
        keep = {p for _, p in complete[-self.keep :]}
        for _, path in steps:
            if path not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def _check_space(self, needed: int) -> None:
        if needed and shutil.disk_usage(self.root).free < needed:
            raise self._disk_full(needed)

    def _disk_full(self, needed: int) -> DiskFull:
        return disk_full(self.root, needed, "a snapshot", "nothing was lost, the previous snapshot is intact")


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` means the disk is full (an OSError with ENOSPC, or a library's wrapped message such
    as safetensors' "No space left on device (os error 28)")."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    text = str(err)
    return isinstance(err, Exception) and ("No space left on device" in text or "os error 28" in text)


def disk_full(folder: Path, needed: int, what: str, consequence: str) -> DiskFull:
    """The one-line message for a full disk: the folder, the space needed and the space free."""
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    need = f"about {human_bytes(needed)}" if needed else "more space"
    return DiskFull(
        errno.ENOSPC,
        f"no space left to write {what} in {folder}: it needs {need} and {human_bytes(free)} is free. "
        f"Free some space or write to another disk (--out); {consequence}",
    )


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open folders; the rename is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_jsonl(path: str | os.PathLike, key: str, last: int) -> int:
    """Drop the lines of ``path`` whose ``key`` is above ``last`` (and a torn last line); return how many.

    A job that resumes from step ``last`` writes the later steps again, so their old lines would otherwise
    appear twice. Lines without ``key`` (notes) before the cut are kept.
    """
    path = Path(path)
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            row = json.loads(line)
        except ValueError:
            dropped += 1  # a line cut off by a kill
            continue
        if isinstance(row, dict) and isinstance(row.get(key), int) and row[key] > last:
            dropped += 1
            continue
        kept.append(line if line.endswith("\n") else line + "\n")
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        _write_synced(tmp, "".join(kept))
        os.replace(tmp, path)
    return dropped


class StopSignals:
    """Turn SIGINT/SIGTERM into a request to stop after the current unit of work (a context manager).

    The first signal sets :attr:`requested` (and prints ``message``); a second SIGINT raises
    ``KeyboardInterrupt`` at once, for when the current step is not worth waiting for. Outside the main
    thread signals cannot be caught, and the context does nothing.
    """

    def __init__(self, message: Callable[[int], None] | None = None):
        self.requested: int | None = None
        self.message = message
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signum
        if self.message is not None:
            self.message(signum)

    def __enter__(self) -> StopSignals:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            self._previous.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
