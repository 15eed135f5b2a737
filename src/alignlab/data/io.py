"""Read and write feedback records: JSONL (also gzipped), JSON arrays, Parquet, ``datasets`` on disk or on
the Hub, in any format of :mod:`alignlab.data.formats`.

Every problem names where it is (``file:line`` for JSONL with 1-based lines, ``file: item i`` for JSON
arrays, ``file:row i`` with 0-based row indices for Parquet and ``datasets``) and how to fix it. With
``on_error="raise"`` the first problem raises :class:`RecordError`; with ``on_error="skip"`` bad rows are
left out and every one is listed in a :class:`LoadReport` (counts by reason), which the caller prints.
Writers are atomic: a temporary file in the same folder, flushed and fsynced, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import itertools
import json
import os
import re
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alignlab.data.containers import (
    RowOrError,
    check_container,
    columnar_row,
    json_array_rows,
    jsonl_rows,
    parquet_rows,
    starts_with,
)
from alignlab.data.formats import FORMATS, Dropped, detect_format, get_format
from alignlab.data.formats.base import Note
from alignlab.data.records import Record, RecordError
from alignlab.durable import fsync_dir

_DETECT_ROWS = 20
# One file of a Hub dataset repository, e.g. hf://datasets/Anthropic/hh-rlhf/harmless-base/test.jsonl.gz
HUB_FILE_PREFIX = "hf://datasets/"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# How a bad row's error says to leave bad rows out: each caller names its own switch (`data.on_error: skip`
# in a run config, `--skip-bad` or `--on-error skip` on a command); SKIP_HINT is the Python API's.
SKIP_HINT = "or leave bad rows out, counted, with on_error='skip'"
CONFIG_SKIP_HINT = "or leave bad rows out, counted, with `data.on_error: skip` in the run config (`--set data.on_error=skip`)"


def switch_hint(switch: str) -> str:
    """The end of a bad row's fix text on a command whose ``switch`` (e.g. ``--skip-bad``) skips bad rows."""
    return f"or leave bad rows out, counted, with {switch}"


def copy_good_hint(source: str | os.PathLike) -> str:
    """The end of a bad row's fix text where the command reading ``source`` cannot skip bad rows itself."""
    return f"or first copy its good records: `alignlab data convert {source} GOOD.jsonl --skip-bad`"


EMPTY_FIX = "give a file with one JSON object per line (or a JSON array, Parquet file or dataset)"


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
        for where, row in _open_rows(source, split, report):
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


def iter_rows(
    source: str | os.PathLike, split: str | None = None, report: LoadReport | None = None
) -> Iterator[RowOrError]:
    """The raw rows of a file, folder or Hub id as ``(where, row dict or RecordError)``, streamed, before
    any format reads them (for tools that read a layout of their own, e.g. OpenAssistant trees)."""
    report = report if report is not None else LoadReport(str(source))
    for where, row in _open_rows(source, split, report):
        report.rows += 1
        yield where, row


def _open_rows(source: str | os.PathLike, split: str | None, report: LoadReport) -> Iterator[RowOrError]:
    if str(source).startswith(HUB_FILE_PREFIX):  # one file of a Hub dataset repository
        yield from _dataset_rows(_load_hub(str(source), split, report), str(source))
        return
    path = Path(source)
    name = path.name.lower()
    if path.is_dir():
        yield from _dataset_rows(_load_from_disk(path, split, report), str(path))
    elif path.is_file():
        if name.endswith(".parquet"):
            yield from parquet_rows(path)
            return
        check_container(path)
        if name.endswith((".json", ".json.gz")) and starts_with(path, "["):
            yield from json_array_rows(path)
        else:
            yield from jsonl_rows(path, report.notes)
    elif path.exists():
        raise RecordError(
            "not a file or folder that holds data", str(path), "give a JSONL/JSON/Parquet file or a folder"
        )
    elif _HUB_ID.match(str(source)) and not str(source).startswith((".", "/")):
        yield from _dataset_rows(_load_hub(str(source), split, report), f"{source}[{split or 'train'}]")
    else:
        raise RecordError(
            "no such file or folder", str(source), "check the path (or give a Hub id as owner/name)"
        )


def _pick_split(dataset: Any, split: str | None, where: str, report: LoadReport) -> Any:
    if not hasattr(dataset, "keys"):  # a Dataset, not a DatasetDict
        return dataset
    splits = list(dataset.keys())
    if split is not None:
        if split not in splits:
            raise RecordError(
                f"no split {split!r}; the splits are {splits}", where, "pass one of them as --split"
            )
        return dataset[split]
    if len(splits) == 1 or "train" in splits:
        chosen = splits[0] if len(splits) == 1 else "train"
        if len(splits) > 1:
            report.notes.append(f"read split {chosen!r} of {splits}; pass --split for another")
        return dataset[chosen]
    raise RecordError(f"the dataset has splits {splits}", where, "pass one of them as --split")


def _load_from_disk(path: Path, split: str | None, report: LoadReport) -> Any:
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise RecordError(
            f"not a saved `datasets` dataset ({err})",
            str(path),
            "give a file, or a folder written by save_to_disk",
        ) from None
    return _pick_split(dataset, split, str(path), report)


def _load_hub(name: str, split: str | None, report: LoadReport) -> Any:
    """A Hub dataset (``owner/name``, ``split`` of it) or one file of a Hub dataset repository
    (``hf://datasets/owner/name/path/file.jsonl.gz``, read whole: ``split`` does not apply)."""
    import datasets

    from alignlab.data import hub

    if name.startswith(HUB_FILE_PREFIX):
        builder = "parquet" if name.lower().endswith(".parquet") else "json"
        load = functools.partial(datasets.load_dataset, builder, data_files=name, split="train")
    else:
        load = functools.partial(datasets.load_dataset, name, split=split)
    cut_off = hub.offline(for_data=True) or not hub.reachable()
    try:
        if cut_off:  # the local cache answers at once, where requests would retry for a minute
            with _datasets_offline():
                dataset = load()
        else:
            dataset = load()
    except Exception as err:  # network, auth or missing-dataset errors all land here
        if cut_off:
            raise RecordError(
                hub.unreachable_message(
                    "data",
                    name,
                    "Download it where there is network and give its local path instead "
                    "(a JSONL/JSON/Parquet file or a save_to_disk folder)",
                    for_data=True,
                )
            ) from None
        raise RecordError(
            f"cannot load Hub dataset: {err}", name, "check the id, your network and HF_TOKEN"
        ) from None
    return _pick_split(dataset, split, name, report)


@contextlib.contextmanager
def _datasets_offline() -> Iterator[None]:
    """``datasets`` reads ``HF_HUB_OFFLINE`` through its ``config`` module, once, at import: set it there."""
    import datasets.config

    previous = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = previous


def _dataset_rows(dataset: Any, where: str) -> Iterator[RowOrError]:
    for i, row in enumerate(dataset):
        yield columnar_row(row, f"{where}:row {i}")


# ------------------------------------------------------------------ writing
WRITE_CHUNK = 4096  # records converted and written at a time when streaming


def write_records(
    records: Iterable[Record],
    path: str | os.PathLike,
    format: str = "alignlab",
    chunk_size: int = WRITE_CHUNK,
) -> Path:
    """Write ``records`` in ``format``; the container follows the suffix (.jsonl, .jsonl.gz, .json,
    .parquet; no suffix = a ``datasets`` folder). Atomic: readers never see a half-written file.

    ``records`` may be any iterable (e.g. :func:`iter_records`): JSONL and Parquet are written
    ``chunk_size`` records at a time (Parquet: one row group per chunk), so memory stays flat; a JSON
    array and a ``datasets`` folder are built whole.
    """
    fmt = get_format(format)
    if fmt.from_records is None:
        writable = sorted(n for n, f in FORMATS.items() if f.from_records is not None)
        raise RecordError(
            f"format {format!r} can be read but not written", str(path), f"write one of {writable}"
        )
    path = Path(path)
    name = path.name.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".parquet"):
        _atomic(path, lambda f: _write_parquet(_row_chunks(records, fmt, chunk_size), fmt.name, str(path), f))
    elif name.endswith((".jsonl", ".jsonl.gz")):
        _atomic(
            path, lambda f: _write_lines(_row_chunks(records, fmt, chunk_size), f, gz=name.endswith(".gz"))
        )
    elif name.endswith(".json"):
        rows = fmt.from_records(list(records))
        _atomic(
            path,
            lambda f: f.write(
                json.dumps(rows, ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")
            ),
        )
    elif path.suffix == "":
        _save_dataset(to_arrow(fmt.from_records(list(records)), fmt.name, str(path)), path)
    else:
        raise RecordError(
            f"unknown file type {path.suffix!r}",
            str(path),
            "use .jsonl, .jsonl.gz, .json, .parquet or a folder name",
        )
    return path


def _row_chunks(records: Iterable[Record], fmt: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    """The format's rows, ``size`` records at a time; a writer error names the record's place in the
    whole stream (``record 12345``), not in its chunk."""
    iterator = iter(records)
    offset = 0
    while chunk := list(itertools.islice(iterator, size)):
        try:
            yield fmt.from_records(chunk)
        except RecordError as err:
            match = re.match(r"record (\d+)(.*)", err.where)
            if match is None:
                raise
            where = f"record {int(match.group(1)) + offset}{match.group(2)}"
            raise RecordError(err.detail, where, err.fix) from None
        offset += len(chunk)


def _write_lines(chunks: Iterable[list[dict[str, Any]]], f: Any, gz: bool) -> None:
    out = gzip.GzipFile(fileobj=f, mode="wb", mtime=0) if gz else f
    for rows in chunks:
        out.write(
            "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows).encode(
                "utf-8"
            )
        )
    if gz:
        out.close()  # writes the gzip trailer; f stays open


def _write_parquet(chunks: Iterable[list[dict[str, Any]]], format: str, where: str, f: Any) -> None:
    """Memory stays flat and every row group has one schema: the rows go to a temporary JSONL spool, the
    union of the chunks' schemas is worked out (a column null in one chunk and text in another, a field
    only later records have, alignlab prompts that are text in one chunk and chat in another), then each
    chunk is cast to that schema and written as one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    prompt_kinds: set[type] = set()
    counts: list[int] = []
    with tempfile.TemporaryFile("w+b") as spool:
        for rows in chunks:
            if format == "alignlab":
                prompt_kinds |= {type(row.get("prompt")) for row in rows}
            spool.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
            counts.append(len(rows))
        split = len(prompt_kinds) > 1

        def tables() -> Iterator[Any]:
            spool.seek(0)
            for n in counts:
                yield to_arrow([json.loads(spool.readline()) for _ in range(n)], format, where, split)

        try:
            schema = pa.unify_schemas([t.schema for t in tables()], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise RecordError(
                f"a column changes type along the file ({err})",
                where,
                "write .jsonl instead, or give each column one type",
            ) from None
        with pq.ParquetWriter(f, schema if counts else pa.schema([])) as writer:
            for table in tables():
                writer.write_table(_conform(table, schema, where))


def _conform(table: Any, schema: Any, where: str) -> Any:
    """``table`` with the columns of ``schema`` in its order and types (missing columns as nulls)."""
    import pyarrow as pa

    columns = []
    for column_type in schema:
        if column_type.name not in table.schema.names:
            columns.append(pa.nulls(len(table), column_type.type))
            continue
        try:
            columns.append(table.column(column_type.name).cast(column_type.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
            raise RecordError(
                f"column {column_type.name!r} changes type between records ({err})",
                where,
                "write .jsonl instead, or give the column one type",
            ) from None
    return pa.table(columns, schema=schema)


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _save_dataset(table: Any, path: Path) -> None:
    import datasets

    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        datasets.Dataset(table).save_to_disk(str(tmp))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)


def to_arrow(
    rows: Sequence[dict[str, Any]], format: str, where: str, split_prompt: bool | None = None
) -> Any:
    """Rows as an Arrow table. For alignlab rows, ``meta`` becomes JSON text and a prompt column mixing
    text and chat splits into ``prompt`` + ``prompt_messages`` (undone by ``formats.alignlab.decode_row``;
    ``split_prompt`` forces the split on or off, for a chunk of a file whose other chunks mix)."""
    import pyarrow as pa

    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns: dict[str, Any] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if format == "alignlab" and name == "meta":
            columns[name] = pa.array(
                [None if v is None else json.dumps(v, allow_nan=False) for v in values], pa.string()
            )
            continue
        split = len({type(v) for v in values}) > 1 if split_prompt is None else split_prompt
        if format == "alignlab" and name == "prompt" and split:
            columns["prompt"] = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
            columns["prompt_messages"] = pa.array([v if isinstance(v, list) else None for v in values])
            continue
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise RecordError(
                f"column {name!r} mixes types that Parquet cannot hold in one column ({err})",
                where,
                "write .jsonl instead, or --to alignlab",
            ) from None
    return pa.table(columns)
