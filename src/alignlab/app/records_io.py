"""Reading task files: alignlab records as JSONL (one JSON object per line)."""

from __future__ import annotations

from pathlib import Path

from alignlab.data.containers import BOM, UTF8_FIX, parse_row
from alignlab.data.records import Record, RecordError


def parse_jsonl(data: bytes | str, source: str = "upload") -> list[Record]:
    """Parse JSONL into records, byte-exact: lines end at \\n only (U+2028 or U+0085 inside a string is
    text, as the CLI reads it), each line must be valid UTF-8 and standard JSON; errors name
    ``source:line`` and the field at fault."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    records = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        where = f"{source}:{number}"
        try:
            text = line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as err:
            raise RecordError(f"not valid UTF-8 (byte 0x{line[err.start]:02x})", where, UTF8_FIX) from None
        if not text.strip():
            continue
        row = parse_row(text, where)
        if isinstance(row, RecordError):
            raise row
        records.append(Record.from_dict(row, where))
    if not records:
        raise RecordError("no records found", source, "give one JSON record per line")
    return records


def read_records_file(path: str | Path) -> list[Record]:
    """Records from a file: through ``alignlab.data.io`` (any supported format) when it is there, else JSONL."""
    try:
        from alignlab.data.io import copy_good_hint, read_records  # type: ignore[import-not-found]
    except ImportError:
        read_records = None
    if read_records is not None:
        return list(read_records(path, format="auto", skip_hint=copy_good_hint(path)))
    path = Path(path)
    return parse_jsonl(path.read_text(encoding="utf-8"), str(path))
