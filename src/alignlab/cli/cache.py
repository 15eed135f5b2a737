"""``alignlab cache list|prune``: the reference log-prob cache on disk."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from alignlab.scoring import cache_store

app = typer.Typer(help="The reference log-prob cache.", no_args_is_help=True, add_completion=False)
DIR_HELP = "Cache directory (reference.cache_dir of your runs; default $ALIGNLAB_CACHE/reference)."


@app.callback()
def _root() -> None:
    """Reference log-prob cache tools."""


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


@app.command("list")
def list_command(
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every cached table: size, last use and what made it (run, model, data, records)."""
    directory = directory or cache_store.default_dir()
    found = cache_store.entries(directory)
    if as_json:
        rows = [{"key": e.key, "bytes": e.size, "last_used": e.last_used, **e.about} for e in found]
        print(json.dumps({"dir": str(directory), "entries": rows}, indent=2))
        return
    table = Table(title=f"{directory}: {len(found)} entries, {_human(sum(e.size for e in found))}")
    for column in ("key", "size", "last used", "run", "model", "data", "records"):
        table.add_column(column)
    for e in found:
        a = e.about
        table.add_row(e.key, _human(e.size), _when(e.last_used), a.get("run", "?"), a.get("model", "?"),
                      a.get("data", "?"), a.get("records", "?"))  # fmt: skip
    Console().print(table)


@app.command("prune")
def prune_command(
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP),
    older_than: float | None = typer.Option(None, "--older-than", help="Remove tables unused for N days."),
    max_size: str | None = typer.Option(
        None, "--max-size", help="Then remove the least recently used until the rest fit, e.g. 5GB."
    ),
    remove_all: bool = typer.Option(False, "--all", help="Remove every table."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
) -> None:
    """Remove cached tables by last use or total size (runs recompute what they need)."""
    directory = directory or cache_store.default_dir()
    if not (remove_all or older_than is not None or max_size is not None):
        raise typer.BadParameter("say what to remove: --older-than DAYS, --max-size SIZE or --all")
    found = cache_store.entries(directory)
    if remove_all:
        chosen = found
    else:
        try:
            limit = cache_store.parse_size(max_size) if max_size is not None else None
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--max-size") from None
        chosen = cache_store.select_for_pruning(found, older_than, limit)
    leftovers = cache_store.abandoned_writes(directory)
    verb = "would remove" if dry_run else "removed"
    for path in [e.path for e in chosen] + leftovers:
        if not dry_run:
            path.unlink(missing_ok=True)
    freed = sum(e.size for e in chosen)
    kept = len(found) - len(chosen)
    extra = f" and {len(leftovers)} abandoned temporary file(s)" if leftovers else ""
    print(f"{verb} {len(chosen)} table(s) ({_human(freed)}){extra}; {kept} kept")
