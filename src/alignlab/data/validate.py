"""Check a data file and describe it: counts, feedback kinds, K, prompt kinds and lengths, and every problem.

Problems (the file cannot be used as is: malformed lines, missing fields, empty completions, a prompt that
differs between chosen and rejected, ...) each come with file, line and fix; warnings (usable, but probably
not what was meant: identical completions in a compared record, a ranking with every completion tied,
duplicate records) do not fail validation. ``alignlab data validate`` prints this report.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.data.io import LoadReport, read_records
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
    """Read ``path`` skipping bad rows, and report counts, every problem and every warning."""
    report = ValidationReport(str(path))
    load = LoadReport(str(path))
    try:
        records = read_records(path, format, split, on_error="skip", report=load)
    except RecordError as err:  # the file as a whole cannot be read (missing, empty, damaged, ...)
        report.format, report.rows = load.format, load.rows
        report.problems = [Finding(e.where, e.detail, e.fix) for e in load.errors]
        report.problems.append(Finding(err.where or str(path), err.detail, err.fix))
        return report
    report.format, report.rows, report.records = load.format, load.rows, len(records)
    report.problems = [Finding(e.where, e.detail, e.fix) for e in load.errors]
    report.dropped = Counter(d.reason for d in load.dropped)
    report.notes = list(load.notes)
    kinds: Counter[str] = Counter()
    ks: Counter[int] = Counter()
    prompt_chars = completion_chars = completions = 0
    for record in records:
        for kind in sorted(record.kinds) or ["demonstration"]:
            kinds[kind] += 1
        ks[record.k] += 1
        report.chat_prompts += record.is_chat
        prompt_chars += (
            sum(len(m["content"]) for m in record.prompt) if record.is_chat else len(record.prompt)
        )
        completion_chars += sum(len(c) for c in record.completions)
        completions += record.k
    report.kinds, report.k_counts = dict(kinds), dict(sorted(ks.items()))
    report.text_prompts = len(records) - report.chat_prompts
    report.mean_prompt_chars = prompt_chars / len(records) if records else 0.0
    report.mean_completion_chars = completion_chars / completions if completions else 0.0
    report.warnings = _warnings(records)
    if report.records == 0 and not report.problems:
        report.problems.append(
            Finding(str(path), "no records", "the file is empty or holds only blank lines")
        )
    return report


def _warnings(records: list[Record]) -> list[Finding]:
    found = []
    seen: dict[str, int] = {}
    for i, record in enumerate(records):
        name = f"record {i}" + (f" (id {record.id})" if record.id is not None else "")
        compared = record.ranking is not None or record.labels is not None or record.scores is not None
        if compared and record.k > 1 and len(set(record.completions)) < record.k:
            found.append(Finding(name, "two completions are identical", "drop the duplicate completion"))
        if record.ranking is not None and record.k > 1 and len(set(record.ranking)) == 1:
            found.append(
                Finding(name, "every completion has the same rank, so it teaches no preference", "drop it")
            )
        key = hashlib.sha1(json.dumps(record.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
        if key in seen:
            found.append(Finding(name, f"duplicate of record {seen[key]}", "deduplicate the data"))
        else:
            seen[key] = i
    return found
