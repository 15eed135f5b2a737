"""How a derived data file was made, in a sidecar beside it: ``OUT.provenance.json``.

Every file an ``alignlab data`` tool writes (label, select, synthesize, trees, route, convert) gets one:
the tool and method, their parameters, each input file with its SHA-256, the judge and model ids, the
counts in and out (and left out, by reason), the alignlab version and the time. ``alignlab data
validate`` prints it when it is there. Written atomically, after the data file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SUFFIX = ".provenance.json"


def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (a folder: of its files' relative names and bytes, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def write_sidecar(
    out: str | os.PathLike,
    tool: str,
    method: str,
    parameters: Mapping[str, Any],
    inputs: Sequence[str | os.PathLike] = (),
    models: Mapping[str, str] | None = None,
    counts: Mapping[str, Any] | None = None,
) -> Path:
    from alignlab import __version__

    body = {
        "tool": tool,
        "method": method,
        "parameters": dict(parameters),
        "inputs": [
            {"path": str(p), "hash": file_hash(p)} if Path(p).exists() else {"path": str(p)} for p in inputs
        ],
        "models": dict(models or {}),
        "counts": dict(counts or {}),
        "output": str(out),
        "alignlab": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    target = sidecar_path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1, ensure_ascii=False, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    target = sidecar_path(path)
    if not target.is_file():
        return None
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except ValueError as err:
        return {"error": f"{target} cannot be read: {err}"}


def render(sidecar: Mapping[str, Any]) -> list[str]:
    """The sidecar as the lines ``alignlab data validate`` prints."""
    if "error" in sidecar:
        return [f"  provenance: {sidecar['error']}"]
    lines = [
        f"  made by: {sidecar.get('tool')} {sidecar.get('method')} (alignlab {sidecar.get('alignlab')}, {sidecar.get('created')})"
    ]
    if sidecar.get("parameters"):
        lines.append("  parameters: " + json.dumps(sidecar["parameters"], ensure_ascii=False, default=str))
    for item in sidecar.get("inputs", []):
        lines.append(f"  input: {item.get('path')} {item.get('hash', '(not found when written)')}")
    for role, ident in (sidecar.get("models") or {}).items():
        lines.append(f"  {role}: {ident}")
    if sidecar.get("counts"):
        lines.append("  counts: " + json.dumps(sidecar["counts"], ensure_ascii=False, default=str))
    return lines
