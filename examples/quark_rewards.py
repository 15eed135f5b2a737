"""The reward of examples/quark.yaml: the share of a completion's non-space characters that are digits (0 for
an empty completion) — a format reward with many levels, so Quark's five reward quantiles are ordered (a 0/1
reward would leave the lower quantiles all at 0). About 0.35 for the randomly initialised tiny model."""

from __future__ import annotations

from typing import Any


def digit_share(completions: list[str], **_: Any) -> list[float]:
    out = []
    for completion in completions:
        chars = [ch for ch in completion if not ch.isspace()]
        out.append(sum(ch.isdigit() for ch in chars) / len(chars) if chars else 0.0)
    return out
