"""The reward of examples/quark.yaml: 1 when a completion starts with a digit, else 0 (a one-token choice:
the first sampled token decides; about 28% of the randomly initialised tiny model's samples)."""

from __future__ import annotations

from typing import Any


def leads_with_digit(completions: list[str], **_: Any) -> list[float]:
    return [float(c.strip()[:1].isdigit()) for c in completions]
