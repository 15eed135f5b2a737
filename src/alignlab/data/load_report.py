"""What a read of feedback records did: :class:`LoadReport` (rows seen, records made, every row left out with
its reason) and :func:`reason_key` (problems counted by kind)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from alignlab.data.formats import Dropped
from alignlab.data.records import RecordError


@dataclass
class LoadReport:
    """What a read did: rows seen, records made, and every row left out with its reason."""

    source: str
    format: str = ""
    rows: int = 0
    records: int = 0
    errors: list[RecordError] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    told: bool = False  # a note the user must see even when nothing was skipped (sent as a warning)
    last_where: str = ""  # where the last row handed to the format came from (file:line)

    @property
    def skipped(self) -> int:
        return len(self.errors) + len(self.dropped)

    def by_reason(self) -> dict[str, int]:
        """Counts of left-out rows by reason (numbers in messages folded so similar problems group)."""
        counts: Counter[str] = Counter(reason_key(e.detail) for e in self.errors)
        counts.update(d.reason for d in self.dropped)
        return dict(counts.most_common())

    def summary(self) -> str:
        text = f"{self.source} ({self.format or '?'}): {self.rows} rows -> {self.records} records"
        if self.skipped:
            text += f"; {len(self.errors)} bad rows skipped, {len(self.dropped)} rows dropped:"
            text += "".join(f"\n  {n} x {reason}" for reason, n in self.by_reason().items())
        for note in self.notes:
            text += f"\n  note: {note}"
        return text


def reason_key(detail: str) -> str:
    """'completions[3] is empty' -> 'completions[#] is empty', so problems count by kind."""
    text = re.sub(r"\d+", "#", detail)
    return text if len(text) <= 100 else text[:97] + "..."
