"""Read and write feedback records: JSONL (also gzipped), JSON arrays, Parquet, ``datasets`` on disk or on
the Hub, in any format of :mod:`alignlab.data.formats`.

This module reads records (:func:`iter_records`, :func:`read_records`, ...) and is the one import for the
rest: the raw rows of a source are ``row_sources.py``'s, the writers ``record_writer.py``'s, the report of a
read ``load_report.py``'s.

Every problem names where it is (``file:line`` for JSONL with 1-based lines, ``file: item i`` for JSON
arrays, ``file:row i`` with 0-based row indices for Parquet and ``datasets``) and how to fix it. With
``on_error="raise"`` the first problem raises :class:`RecordError`; with ``on_error="skip"`` bad rows are
left out and every one is listed in a :class:`LoadReport` (counts by reason), which the caller prints.
Writers are atomic: a temporary file in the same folder, flushed and fsynced, then renamed over the target.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from alignlab.data.formats import Dropped, detect_format, get_format
from alignlab.data.formats.base import Note
from alignlab.data.load_report import LoadReport, reason_key
from alignlab.data.record_writer import WRITE_CHUNK, to_arrow, write_records
from alignlab.data.records import Record, RecordError
from alignlab.data.row_sources import HUB_FILE_PREFIX, iter_rows, open_rows

__all__ = [
    "CONFIG_SKIP_HINT",
    "EMPTY_FIX",
    "GROUPED_FORMATS",
    "HUB_FILE_PREFIX",
    "SKIP_HINT",
    "WRITE_CHUNK",
    "LoadReport",
    "copy_good_hint",
    "iter_located",
    "iter_records",
    "iter_rows",
    "load_records",
    "read_records",
    "reason_key",
    "switch_hint",
    "to_arrow",
    "write_records",
]

_DETECT_ROWS = 20
# How a bad row's error says to leave bad rows out: each caller names its own switch (`data.on_error: skip`
# in a run config, `--skip-bad` or `--on-error skip` on a command); SKIP_HINT is the Python API's.
SKIP_HINT = "or leave bad rows out, counted, with on_error='skip'"
CONFIG_SKIP_HINT = (
    "or leave bad rows out, counted, with `data.on_error: skip` in the run config "
    "(`--set data.on_error=skip`)"
)


def switch_hint(switch: str) -> str:
    """The end of a bad row's fix text on a command whose ``switch`` (e.g. ``--skip-bad``) skips bad rows."""
    return f"or leave bad rows out, counted, with {switch}"


def copy_good_hint(source: str | os.PathLike) -> str:
    """The end of a bad row's fix text where the command reading ``source`` cannot skip bad rows itself."""
    return f"or first copy its good records: `alignlab data convert {source} GOOD.jsonl --skip-bad`"


EMPTY_FIX = "give a file with one JSON object per line (or a JSON array, Parquet file or dataset)"


# ------------------------------------------------------------------ reading
def iter_records(
    source: str | os.PathLike,
    format: str = "auto",
    split: str | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    report: LoadReport | None = None,
    *,
    skip_hint: str = SKIP_HINT,
) -> Iterator[Record]:
    """Records of ``source`` one at a time, never the whole file in memory (see :func:`read_records`).

    JSONL (plain or gzipped) is read line by line, Parquet one row group batch at a time and ``datasets``
    row by row, so memory stays flat in the file size. Formats that must see related rows together hold
    the whole file: OpenAssistant (message trees) and HelpSteer (rows grouped by prompt). A JSON array is parsed whole (JSON has no
    way to read half an array); use JSONL for large files. ``report`` is filled as the stream advances:
    its counts are final once the iterator is exhausted. With ``on_error="raise"`` a bad row's error ends
    with ``skip_hint``: how the caller's user leaves bad rows out (see :data:`SKIP_HINT`).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    report = report if report is not None else LoadReport(str(source))

    def keep(err: RecordError) -> None:
        if on_error == "raise":
            raise RecordError(err.detail, err.where, f"{err.fix}; {skip_hint}" if err.fix else skip_hint)
        report.errors.append(err)

    def good_rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for where, row in open_rows(source, split, report):
            report.rows += 1
            if isinstance(row, RecordError):
                keep(row)
            else:
                yield where, row

    fmt = None if format == "auto" else get_format(format)
    stream = good_rows()
    head = list(itertools.islice(stream, _DETECT_ROWS))
    if report.rows == 0:
        raise RecordError("the file is empty: it holds no rows", str(source), EMPTY_FIX)
    if not head:  # every row so far was unreadable: report those, do not guess a format from nothing
        report.format = fmt.name if fmt else "unknown"
        for _ in stream:
            pass
        return
    fmt = fmt or detect_format([r for _, r in head], str(source))
    report.format = fmt.name

    def tracked(rows: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for where, row in rows:
            report.last_where = where
            yield where, row

    for outcome in fmt.to_records(tracked(itertools.chain(head, stream))):
        if isinstance(outcome, Record):
            report.records += 1
            yield outcome
        elif isinstance(outcome, Dropped):
            report.dropped.append(outcome)
        elif isinstance(outcome, Note):
            report.notes.append(outcome.text)
            report.told = True
        else:
            keep(outcome)


# Formats that make a record from several rows (so a record has no single line of its own).
GROUPED_FORMATS = ("oasst", "helpsteer")


def iter_located(
    source: str | os.PathLike,
    format: str = "auto",
    split: str | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    report: LoadReport | None = None,
    *,
    skip_hint: str = SKIP_HINT,
) -> Iterator[tuple[str, Record]]:
    """:func:`iter_records` with where each record came from: ``file:line`` (``file:row i`` for Parquet and
    ``datasets``) for formats with one row per record, ``file: record n`` (0-based) for grouped ones."""
    report = report if report is not None else LoadReport(str(source))
    for n, record in enumerate(iter_records(source, format, split, on_error, report, skip_hint=skip_hint)):
        yield (f"{source}: record {n}" if report.format in GROUPED_FORMATS else report.last_where), record


def read_records(
    source: str | os.PathLike,
    format: str = "auto",
    split: str | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    report: LoadReport | None = None,
    *,
    skip_hint: str = SKIP_HINT,
) -> list[Record]:
    """Read records from a file, a ``datasets`` folder or a Hub id, converting from ``format``.

    ``format="auto"`` picks the format from the columns of the first rows. Pass a :class:`LoadReport` to get
    the counts and every skipped row; without one, anything skipped or dropped is also sent as a warning.
    For files too large for memory, iterate :func:`iter_records` instead.
    """
    own_report = report is None
    report = report if report is not None else LoadReport(str(source))
    records = list(iter_records(source, format, split, on_error, report, skip_hint=skip_hint))
    report.records = len(records)
    if own_report and (report.skipped or report.told):
        warnings.warn(report.summary(), stacklevel=2)
    return records


def load_records(
    source: str | os.PathLike,
    format: str = "auto",
    split: str | None = None,
    on_error: Literal["raise", "skip"] = "skip",
    *,
    skip_hint: str = SKIP_HINT,
) -> tuple[list[Record], LoadReport]:
    """:func:`read_records` that also returns its :class:`LoadReport` (skipping bad rows by default)."""
    report = LoadReport(str(source))
    return read_records(source, format, split, on_error, report, skip_hint=skip_hint), report
