"""Rows out of containers: JSONL (plain or gzipped), JSON arrays, Parquet and ``datasets`` folders.

Each reader yields ``(where, row)`` pairs, a row being a plain dict or a :class:`RecordError` for a row
that cannot be read (so the caller can stop or skip and count). A problem that makes the rest of the file
unreadable (not gzip although named ``.gz``, truncated compression, a damaged Parquet file) raises a
:class:`RecordError` naming the file and, where known, the line. Bytes are decoded as strict UTF-8 line
by line, so invalid text is refused with its line rather than replaced, and JSON is parsed by
:mod:`alignlab.data.strict_json` (no duplicate keys, no NaN/Infinity, no lone surrogates).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from alignlab.data.records import RecordError
from alignlab.data.strict_json import JSONProblem, find_unstorable, loads

RowOrError = tuple[str, Any]  # (where, row dict or RecordError)
JSONL_FIX = "each line must hold one JSON object; fix or delete this line"
UTF8_FIX = "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`) or fix this line"
BOM = b"\xef\xbb\xbf"

# Magic numbers of containers people send by mistake, with what to do about each.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed", "name it *.jsonl.gz (or *.json.gz), or decompress it with gunzip"),
    (b"PAR1", "a Parquet file", "name it *.parquet"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (unzstd)"),
    (b"PK\x03\x04", "a zip archive", "unzip it and pass the file inside"),
    (b"\xff\xfe", "UTF-16 text", "save it as UTF-8 (e.g. `iconv -f utf-16 -t utf-8 IN > OUT`)"),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8 (e.g. `iconv -f utf-16 -t utf-8 IN > OUT`)"),
)


def _head(path: Path, n: int = 8) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _is_gz(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def check_container(path: Path) -> None:
    """Refuse a file whose bytes do not match its name (gzip without .gz, .gz that is not gzip, ...)."""
    head = _head(path)
    if _is_gz(path):
        if not head.startswith(b"\x1f\x8b"):
            raise RecordError(
                f"named .gz but not gzip data (it starts with {head[:4]!r})",
                str(path),
                "if it is plain JSONL, remove .gz from its name; else re-compress it with gzip",
            )
        return
    for magic, what, fix in _MAGIC:
        if head.startswith(magic) and not (magic == b"PAR1" and path.name.lower().endswith(".parquet")):
            raise RecordError(f"the file is {what}, but its name says plain JSON", str(path), fix)


def _binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if _is_gz(path) else open(path, "rb")  # noqa: SIM115


def _damaged(path: Path, lineno: int, err: BaseException) -> RecordError:
    return RecordError(
        f"the gzip data is damaged or cut short after line {lineno} ({err})",
        str(path),
        "download or copy the file again; the lines before this point were read fine",
    )


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered lines as bytes (split at \\n only, as JSONL is); damaged compression raises."""
    lineno = 0
    with _binary(path) as f:
        while True:
            try:
                raw = f.readline()
            except (OSError, EOFError, zlib.error) as err:
                raise _damaged(path, lineno, err) from None
            if not raw:
                return
            lineno += 1
            yield lineno, raw


def _decode(raw: bytes, where: str) -> str | RecordError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(raw[: err.start].decode("utf-8", errors="replace")) + 1
        return RecordError(
            f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {column})", where, UTF8_FIX
        )


def parse_row(text: str, where: str, fix: str = JSONL_FIX) -> dict[str, Any] | RecordError:
    """One JSON object from ``text`` by the strict rules, or the error naming ``where``."""
    try:
        row = loads(text)
    except JSONProblem as err:
        message = err.message + (f" (column {err.column})" if err.column is not None else "")
        return RecordError(message, where, f"{err.fix}, or delete this line" if err.fix else fix)
    if not isinstance(row, dict):
        return RecordError(f"expected a JSON object, got {type(row).__name__}", where, fix)
    return row


def jsonl_rows(path: Path, notes: list[str]) -> Iterator[RowOrError]:
    for lineno, raw in _raw_lines(path):
        if lineno == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
            notes.append("the file starts with a UTF-8 byte-order mark; it was ignored")
        where = f"{path}:{lineno}"
        text = _decode(raw.rstrip(b"\r\n"), where)
        if isinstance(text, RecordError):
            yield where, text
        elif text.strip():  # blank lines hold no record
            yield where, parse_row(text, where)


def starts_with(path: Path, char: str) -> bool:
    """Whether the first non-blank text of the file is ``char`` (a JSON array starts with '[')."""
    try:
        with _binary(path) as f:
            head = f.read(4096)
    except (OSError, EOFError, zlib.error) as err:
        raise _damaged(path, 0, err) from None
    return head.lstrip(BOM + b" \t\r\n").startswith(char.encode())


def json_array_rows(path: Path) -> Iterator[RowOrError]:
    chunks = []
    for lineno, raw in _raw_lines(path):
        text = _decode(raw, f"{path}:{lineno}")
        if isinstance(text, RecordError):
            raise text
        chunks.append(text)
    try:
        items = loads("".join(chunks).lstrip("\ufeff"))
    except JSONProblem as err:
        raise RecordError(
            str(err), str(path), err.fix or "fix the JSON array (one object per record)"
        ) from None
    if not isinstance(items, list):
        raise RecordError("expected a JSON array of objects", str(path), "write [{...}, {...}] or JSONL")
    for i, row in enumerate(items):
        where = f"{path}: item {i}"
        if not isinstance(row, dict):
            row = RecordError(
                f"expected a JSON object, got {type(row).__name__}",
                where,
                "the array must hold one object per record",
            )
        yield where, row


def parquet_rows(path: Path) -> Iterator[RowOrError]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise RecordError(
            f"cannot read Parquet: {err}", str(path), "check that the file is a complete Parquet file"
        ) from None
    index = 0
    batches = pf.iter_batches(batch_size=1024)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as err:  # a damaged row group
            raise RecordError(
                f"cannot read Parquet after row {index}: {err}",
                str(path),
                "check that the file is a complete Parquet file",
            ) from None
        for row in batch.to_pylist():
            yield columnar_row(row, f"{path}:row {index}")
            index += 1


def columnar_row(row: dict[str, Any], where: str) -> RowOrError:
    """A Parquet or ``datasets`` row, refused when it holds what JSON cannot (NaN, infinities)."""
    problem = find_unstorable(row)
    if problem:
        return where, RecordError(problem, where, "write a finite number, or null for a missing value")
    return where, row
