"""A run's notes on stderr: one line each in a file or pipe (greppable), brackets printed as written."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from alignlab.train.logger import MetricsLogger


def test_a_note_is_one_plain_line_in_a_file(tmp_path):
    out = io.StringIO()
    logger = MetricsLogger(
        tmp_path, SimpleNamespace(is_main_process=True), console=Console(file=out, width=40)
    )
    text = "data.json (hh-rlhf): 1312 rows -> 1305 records; 7 bad rows skipped [data.on_error: skip]"
    logger.note(text)
    assert out.getvalue() == f"alignlab: {text}\n"
