"""What is in the reference log-prob cache, and pruning it by last use or total size.

Each entry is one ``<key>.safetensors`` file (see ``reference_cache.py``); its metadata says what made it,
and its modification time is its last use (``ReferenceLogps.load`` touches it). A ``.tmp-<pid>`` file is a
write that a killed process never finished; it is removed when its process is gone.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

_SIZE = re.compile(r"^\s*([0-9.]+(?:e[0-9]+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def default_dir() -> Path:
    """Where reference log-probs are cached by default: ``$ALIGNLAB_CACHE/reference`` (default
    ``~/.cache/alignlab/reference``). Read at each call, not at import, so a test or a caller that sets
    ``ALIGNLAB_CACHE`` later is obeyed (kept here, torch-free, so `alignlab cache` starts fast)."""
    return Path(os.environ.get("ALIGNLAB_CACHE", Path.home() / ".cache" / "alignlab")) / "reference"


@dataclass
class CacheEntry:
    path: Path
    size: int
    last_used: float  # seconds since the epoch
    about: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.path.name.removesuffix(".safetensors")


def parse_size(text: str) -> int:
    """Bytes in ``"500MB"``, ``"2 GiB"``, ``"1e9"`` (decimal units; ``i`` forms are binary)."""
    match = _SIZE.match(text)
    if not match or match.group(1).count(".") > 1:
        raise ValueError(
            f"cannot read size '{text}': write a number with an optional unit, e.g. 500MB or 2GB"
        )
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    if unit in ("", "b"):
        return int(number)
    power = "kmgt".index(unit[0]) + 1
    return int(number * (1024 if "i" in unit else 1000) ** power)


def read_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its header only."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return dict(header.get("__metadata__") or {})


def entries(directory: Path) -> list[CacheEntry]:
    """Cache entries in ``directory``, most recently used first."""
    if not directory.is_dir():
        return []
    out = []
    for path in directory.glob("*.safetensors"):
        stat = path.stat()
        try:
            about = read_metadata(path)
        except (OSError, ValueError, struct.error):
            about = {"error": "unreadable header"}
        out.append(CacheEntry(path, stat.st_size, stat.st_mtime, about))
    return sorted(out, key=lambda e: -e.last_used)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def abandoned_writes(directory: Path) -> list[Path]:
    """Temporary files of writers that no longer run."""
    out = []
    for path in directory.glob("*.tmp-*") if directory.is_dir() else []:
        pid = path.name.rsplit(".tmp-", 1)[1]
        if not pid.isdigit() or not _pid_alive(int(pid)):
            out.append(path)
    return out


def select_for_pruning(
    found: list[CacheEntry], older_than_days: float | None = None, max_bytes: int | None = None
) -> list[CacheEntry]:
    """Entries unused for more than ``older_than_days``, then the least recently used until the rest fit in
    ``max_bytes``."""
    now = time.time()
    chosen = [e for e in found if older_than_days is not None and now - e.last_used > older_than_days * 86400]
    if max_bytes is not None:
        kept = sorted((e for e in found if e not in chosen), key=lambda e: e.last_used)  # oldest first
        total = sum(e.size for e in kept)
        for entry in kept:
            if total <= max_bytes:
                break
            chosen.append(entry)
            total -= entry.size
    return chosen
