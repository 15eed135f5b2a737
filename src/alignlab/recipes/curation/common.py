"""What the curation runners share: the run report (in, out, rejected by reason with file and line)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from alignlab.data.io import LoadReport, reason_key, switch_hint

# A bad input row's error names the data tools' switch (`alignlab data label|select|synthesize|route
# --skip-bad`; skip_bad=True in Python).
SKIP_BAD_HINT = switch_hint("--skip-bad (skip_bad=True in Python)")


@dataclass
class Rejected:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class RunReport:
    """How many records went in and came out, and every record the tool could not use."""

    tool: str
    load: LoadReport | None = None
    records_in: int = 0
    records_out: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def reject(self, where: str, reason: str) -> None:
        self.rejected.append(Rejected(where, reason))

    @property
    def problems(self) -> int:
        """Rejected records plus rows the reader could not read (what --strict fails on)."""
        return len(self.rejected) + (len(self.load.errors) + len(self.load.dropped) if self.load else 0)

    def by_reason(self) -> dict[str, int]:
        counts: Counter[str] = Counter(reason_key(r.reason) for r in self.rejected)
        if self.load is not None:
            counts.update(self.load.by_reason())
        return dict(counts.most_common())

    def counts(self) -> dict[str, Any]:
        return {"in": self.records_in, "out": self.records_out, "rejected": self.by_reason(), **self.extra}

    def lines(self, limit: int = 20) -> list[str]:
        out = []
        if self.load is not None:
            out.append(self.load.summary())
            out += [f"  skipped {e}" for e in self.load.errors[:limit]]
        out.append(f"{self.tool}: {self.records_in} records in -> {self.records_out} out")
        for reason, n in self.by_reason().items():
            out.append(f"  {n} x {reason}")
        for r in self.rejected[:limit]:
            out.append(f"  rejected {r}")
        if len(self.rejected) > limit:
            out.append(f"  ... and {len(self.rejected) - limit} more rejected records")
        for key, value in self.extra.items():
            out.append(f"  {key}: {json.dumps(value, default=str)}")
        return out
