"""Check a data file and describe it: counts, feedback kinds, K, prompt kinds and lengths, and every problem.

Problems (the file cannot be used as is: malformed lines, missing fields, empty completions, a prompt that
differs between chosen and rejected, ...) each come with file, line and fix; warnings (usable, but probably
not what was meant: identical completions in a compared record, a ranking with every completion tied,
duplicate records) do not fail validation. ``alignlab data validate`` prints this report.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.data.io import LoadReport, iter_records
from alignlab.data.provenance import read_sidecar
from alignlab.data.provenance import render as render_provenance
from alignlab.data.records import Record, RecordError


@dataclass
class Finding:
    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")


@dataclass
class ValidationReport:
    path: str
    format: str = ""
    rows: int = 0
    records: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    k_counts: dict[int, int] = field(default_factory=dict)
    chat_prompts: int = 0
    text_prompts: int = 0
    mean_prompt_chars: float = 0.0
    mean_completion_chars: float = 0.0
    problems: list[Finding] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] | None = None  # the sidecar of a file an alignlab data tool made

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "ok": self.ok,
            "rows": self.rows,
            "records": self.records,
            "kinds": self.kinds,
            "k": {str(k): n for k, n in sorted(self.k_counts.items())},
            "prompts": {"chat": self.chat_prompts, "text": self.text_prompts},
            "mean_prompt_chars": round(self.mean_prompt_chars, 1),
            "mean_completion_chars": round(self.mean_completion_chars, 1),
            "problems": [vars(p) for p in self.problems],
            "dropped": self.dropped,
            "warnings": [vars(w) for w in self.warnings],
            "notes": self.notes,
            "provenance": self.provenance,
        }

    def render(self) -> str:
        k = ", ".join(f"K={k}: {n}" for k, n in sorted(self.k_counts.items())) or "-"
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.kinds.items())) or "-"
        lines = [
            f"{self.path} ({self.format}): {self.rows} rows -> {self.records} records",
            f"  feedback: {kinds}",
            f"  completions per record: {k}",
            f"  prompts: {self.chat_prompts} chat, {self.text_prompts} text; mean {self.mean_prompt_chars:.0f} chars;"
            f" mean completion {self.mean_completion_chars:.0f} chars",
        ]
        for reason, n in self.dropped.items():
            lines.append(f"  dropped {n} x {reason}")
        lines += [f"  note: {n}" for n in self.notes]
        if self.provenance is not None:
            lines += render_provenance(self.provenance)
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
            if self.records:
                lines.append(
                    f"to use the {self.records} good records and leave the bad rows out (counted), set "
                    "`data.on_error: skip` in the run config (CLI: data convert --skip-bad)"
                )
        else:
            lines.append("no problems")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  {w}" for w in self.warnings]
        return "\n".join(lines)


def validate_file(path: str | Path, format: str = "auto", split: str | None = None) -> ValidationReport:
    """Read ``path`` skipping bad rows, and report counts, every problem and every warning.

    The file is streamed (:func:`~alignlab.data.io.iter_records`): memory holds the counts, the problems
    and warnings found, and a fixed-size buffer of the duplicate check (:class:`_Duplicates`: 64-bit
    hashes spilled in sorted runs to a temporary file), not the records.
    """
    report = ValidationReport(str(path), provenance=read_sidecar(path))
    load = LoadReport(str(path))
    kinds: Counter[str] = Counter()
    ks: Counter[int] = Counter()
    prompt_chars = completion_chars = completions = 0
    duplicates = _Duplicates()
    try:
        for index, record in enumerate(iter_records(path, format, split, on_error="skip", report=load)):
            for kind in sorted(record.kinds) or ["demonstration"]:
                kinds[kind] += 1
            ks[record.k] += 1
            report.chat_prompts += record.is_chat
            prompt_chars += (
                sum(len(m["content"]) for m in record.prompt) if record.is_chat else len(record.prompt)
            )
            completion_chars += sum(len(c) for c in record.completions)
            completions += record.k
            report.warnings += _record_warnings(index, record)
            duplicates.add(record)
    except RecordError as err:  # the file as a whole cannot be read (missing, empty, damaged, ...)
        report.format, report.rows = load.format, load.rows
        report.problems = [Finding(e.where, e.detail, e.fix) for e in load.errors]
        report.problems.append(Finding(err.where or str(path), err.detail, err.fix))
        return report
    report.format, report.rows, report.records = load.format, load.rows, load.records
    report.problems = [Finding(e.where, e.detail, e.fix) for e in load.errors]
    report.dropped = Counter(d.reason for d in load.dropped)
    report.notes = list(load.notes)
    report.kinds, report.k_counts = dict(kinds), dict(sorted(ks.items()))
    report.text_prompts = report.records - report.chat_prompts
    report.mean_prompt_chars = prompt_chars / report.records if report.records else 0.0
    report.mean_completion_chars = completion_chars / completions if completions else 0.0
    repeated = duplicates.repeated()
    found: dict[int, int] = {}  # {index of a duplicate: index of the first record equal to it}
    if repeated:  # a second pass finds which records they are, so the first pass kept only the hashes
        first: dict[int, int] = {}
        for index, record in enumerate(iter_records(path, format, split, on_error="skip")):
            key = duplicates.key(record)
            if key in repeated:
                found[index] = first.setdefault(key, index)
                if record.id is not None:
                    duplicates.ids[index] = record.id
    report.warnings = _merge(report.warnings, duplicates.findings(found))
    if report.records == 0 and not report.problems:
        report.problems.append(
            Finding(str(path), "no records", "the file is empty or holds only blank lines")
        )
    return report


def _name(i: int, record_id: Any) -> str:
    return f"record {i}" + (f" (id {record_id})" if record_id is not None else "")


def _record_warnings(i: int, record: Record) -> list[Finding]:
    found = []
    name = _name(i, record.id)
    compared = record.ranking is not None or record.labels is not None or record.scores is not None
    if compared and record.k > 1 and len(set(record.completions)) < record.k:
        found.append(Finding(name, "two completions are identical", "drop the duplicate completion"))
    if record.ranking is not None and record.k > 1 and len(set(record.ranking)) == 1:
        found.append(
            Finding(name, "every completion has the same rank, so it teaches no preference", "drop it")
        )
    return found


class _Duplicates:
    """Exact duplicate records in memory that does not grow with the file: a 64-bit BLAKE2 hash of each
    record's JSON goes into a buffer of ``run_size`` hashes; a full buffer is sorted and written to a
    temporary file as one sorted run. At the end a k-way merge of the runs (each read ``merge_bytes //
    runs`` bytes at a time) finds the hashes that occur more than once, and only when there are some is the
    file read again to find which records they are (and their ids). Memory: the buffer, the merge's read
    blocks and the repeated hashes, whatever the number of records."""

    def __init__(self, run_size: int = 1 << 16, merge_bytes: int = 1 << 19) -> None:
        self.run_size, self.merge_bytes = run_size, merge_bytes
        self.buffer = array("Q")
        self.runs: list[tuple[int, int]] = []  # (byte offset, number of hashes) of each sorted run
        self.spill: Any = None  # the temporary file of runs, made when the first buffer fills
        self.ids: dict[int, Any] = {}

    @staticmethod
    def key(record: Record) -> int:
        text = json.dumps(record.to_dict(), sort_keys=True, default=str).encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")

    def add(self, record: Record) -> None:
        self.buffer.append(self.key(record))
        if len(self.buffer) >= self.run_size:
            self._write_run()

    def _write_run(self) -> None:
        import numpy as np

        if self.spill is None:
            self.spill = tempfile.TemporaryFile(prefix="alignlab-validate-")
        ordered = np.frombuffer(self.buffer, dtype=np.uint64)
        ordered.sort()
        offset = self.spill.seek(0, 2)
        self.spill.write(ordered.data)
        self.runs.append((offset, len(ordered)))
        del ordered
        self.buffer = array("Q")

    def repeated(self) -> set[int]:
        """The hashes that occur more than once."""
        import numpy as np

        if not self.runs:  # everything fits in one buffer: sort it in place (no copy)
            if len(self.buffer) < 2:
                return set()
            ordered = np.frombuffer(self.buffer, dtype=np.uint64)
            ordered.sort()
            return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
        if self.buffer:
            self._write_run()
        try:
            found: set[int] = set()
            previous = None
            for value in heapq.merge(*(self._read_run(*run) for run in self.runs)):
                if value == previous:
                    found.add(value)
                previous = value
            return found
        finally:
            self.spill.close()
            self.spill, self.runs = None, []

    def _read_run(self, offset: int, count: int) -> Iterator[int]:
        """One sorted run, read a block at a time (the blocks of all runs share ``merge_bytes``)."""
        import numpy as np

        block = max(64, self.merge_bytes // 8 // len(self.runs))
        for start in range(0, count, block):
            n = min(block, count - start)
            self.spill.seek(offset + 8 * start)  # the runs' readers take turns on one file
            data = self.spill.read(8 * n)
            yield from np.frombuffer(data, dtype=np.uint64).tolist()

    def findings(self, found: dict[int, int]) -> list[tuple[int, Finding]]:
        return [
            (i, Finding(_name(i, self.ids.get(i)), f"duplicate of record {j}", "deduplicate the data"))
            for i, j in sorted(found.items())
            if i != j
        ]


def _merge(per_record: list[Finding], duplicates: list[tuple[int, Finding]]) -> list[Finding]:
    """Warnings in record order: a record's own warnings, then its duplicate note (as before streaming)."""
    keyed = [(_index(f.where), 0, n, f) for n, f in enumerate(per_record)]
    keyed += [(i, 1, n, f) for n, (i, f) in enumerate(duplicates)]
    return [f for *_, f in sorted(keyed, key=lambda t: t[:3])]


def _index(where: str) -> int:
    return int(where.split()[1])
