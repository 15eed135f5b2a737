"""A self-contained HTML report: tables and PNG plots embedded as base64, readable without a server."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}.pass{color:#080}"
    ".fail{color:#b00}"
)


def embed_png(path: str | Path, alt: str = "") -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def write_report(
    path: str | Path,
    title: str,
    sections: Sequence[tuple[str, str]],
    intro: str = "",
    intro_html: bool = False,
) -> Path:
    """Write ``path`` (HTML) from (heading, html body) sections; returns the path. ``intro`` is one paragraph
    of text, or HTML put in as is with ``intro_html``."""
    path = Path(path)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(intro if intro_html else f"<p>{intro}</p>")
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path
