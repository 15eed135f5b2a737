"""Write feedback records in any writable format of :mod:`alignlab.data.formats`: JSONL (also gzipped),
JSON arrays, Parquet (streamed row groups with one unified schema) and ``datasets`` folders. Writers are
atomic: a temporary file in the same folder, flushed and fsynced, then renamed over the target."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from alignlab.data.formats import FORMATS, get_format
from alignlab.data.records import Record, RecordError
from alignlab.durable import fsync_dir

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
