"""Resumable output for long data jobs (``alignlab data label``, ``data synthesize``): a killed job
continues where it stopped, nothing is written twice and nothing done is lost.

The job writes each finished unit (a labelled record, a batch of synthesised ones) as one line
``{"i": n, "records": [...]}`` of ``OUT.parts.jsonl``,
flushed and fsynced before the next unit starts, beside ``OUT.parts.state.json`` (the parameters and the
input's hash). On ``--resume`` the state must match (else the job refuses, naming what changed), a torn
last line from a kill is dropped (``alignlab.durable.truncate_jsonl``), and units up to the last complete
line are skipped. When every unit is done, OUT is written atomically from the parts (in unit order) and
the parts files are removed. Starting without ``--resume`` where parts exist is an error, so nothing is
overwritten by accident.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from alignlab.data.records import Record, RecordError
from alignlab.durable import truncate_jsonl


class ResumeError(ValueError):
    """Parts of an earlier run are in the way, or do not belong to this job."""


class PartsFile:
    def __init__(self, out: str | os.PathLike, state: Mapping[str, Any], resume: bool):
        out = Path(out)
        self.path = out.with_name(out.name + ".parts.jsonl")
        self.state_path = out.with_name(out.name + ".parts.state.json")
        self.state = json.loads(json.dumps(dict(state), default=str))
        self.done = 0
        if self.path.exists() or self.state_path.exists():
            if not resume:
                raise ResumeError(
                    f"{self.path} holds the finished part of an earlier run; pass --resume to continue it, "
                    "or delete it to start again"
                )
            self._check_state()
            truncate_jsonl(self.path, "i", 1 << 62)  # drops a line torn by a kill
            self.done = self._count()
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.state_path.write_text(json.dumps(self.state, indent=1))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def _check_state(self) -> None:
        try:
            old = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as err:
            raise ResumeError(
                f"{self.state_path} cannot be read ({err}); delete the parts to start again"
            ) from None
        changed = sorted(k for k in set(old) | set(self.state) if old.get(k) != self.state.get(k))
        if changed:
            raise ResumeError(
                f"cannot resume: {', '.join(changed)} changed since the earlier run "
                f"(was {[old.get(k) for k in changed]}); run it with the same input and options, or delete {self.path}"
            )

    def _count(self) -> int:
        n = 0
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if json.loads(line)["i"] != n - 1:
                    raise ResumeError(f"{self.path}:{n}: units out of order; delete the parts to start again")
        return n

    def add(self, *records: Record) -> None:
        """One unit of work: its records (none, when a batch's filters left nothing) as one line."""
        line = {"i": self.done, "records": [r.to_dict() for r in records]}
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.done += 1

    def commit(self) -> None:
        """Make the units added so far durable (call after each batch)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def records(self) -> Iterator[Record]:
        self.commit()
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    unit = [Record.from_dict(r, f"{self.path}:{n}") for r in json.loads(line)["records"]]
                except (RecordError, KeyError, ValueError) as err:
                    raise ResumeError(f"{self.path}:{n}: {err}") from None
                yield from unit

    def close(self, remove: bool) -> None:
        self._file.close()
        if remove:
            self.path.unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)
