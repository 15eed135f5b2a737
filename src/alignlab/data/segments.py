"""Fine-grained feedback on text segments: a completion cut into sentences (or kept whole), and which
segments an annotator's error spans touch (Wu et al. 2023, "Fine-Grained Human Feedback Gives Better
Rewards for Language Model Training", arXiv 2306.01693). The objective that trains per-segment
classifiers and the judge that scores with them cut text the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

FINE_GRAINED_PAPER = "Wu et al. 2023 'Fine-Grained Human Feedback Gives Better Rewards for Language Model Training' (arXiv 2306.01693)"
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")


def segment_text(text: str, granularity: str = "sentence") -> list[tuple[int, int]]:
    """Character ranges [start, end) that cover ``text``: one per sentence (ending at . ! ? or a newline,
    whitespace after it belongs to the next segment) or one for the whole text (``response``)."""
    if granularity == "response":
        return [(0, len(text))]
    if granularity != "sentence":
        raise ValueError(f"segmentation must be 'sentence' or 'response', got '{granularity}'")
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            out.append((start, end))
            start = end
    if text[start:].strip() or not out:
        out.append((start, len(text)))
    elif start < len(text) and out:
        out[-1] = (out[-1][0], len(text))  # trailing whitespace joins the last segment
    return out


def segment_labels(
    spans: Sequence[Any], segments: Sequence[tuple[int, int]], aspects: Sequence[str]
) -> np.ndarray:
    """[J, A] 1.0 where segment j has no error span of aspect k overlapping it, 0.0 where it has one."""
    labels = np.ones((len(segments), len(aspects)))
    for span in spans:
        label = span.label if hasattr(span, "label") else span["label"]
        start = span.start if hasattr(span, "start") else span["start"]
        end = span.end if hasattr(span, "end") else span["end"]
        if label not in aspects:
            continue
        for j, (s, e) in enumerate(segments):
            if start < e and end > s:
                labels[j, list(aspects).index(label)] = 0.0
    return labels
