"""``alignlab app ...``: run the feedback service and manage projects from the shell."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import typer
from sqlalchemy import select

from alignlab.app import store
from alignlab.app.db import DEFAULT_DB, Database
from alignlab.app.export import AGGREGATES, FORMATS, export_rows
from alignlab.app.models import Project, Token
from alignlab.app.records_io import read_records_file
from alignlab.app.stats import progress, project_stats
from alignlab.data.records import RecordError

app = typer.Typer(help="Collect human feedback: a web app for annotators, backed by SQLite or PostgreSQL.")

DB = typer.Option(
    DEFAULT_DB, "--db", envvar="ALIGNLAB_APP_DB", help="sqlite:///PATH, a file path, or postgresql://..."
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _open(db: str) -> Database:
    try:
        return Database(db)
    except Exception as err:  # a wrong URL or an unreachable server: say which, without a traceback
        _fail(f"cannot open the database {db!r}: {err}")
        raise


@app.command()
def serve(
    db: str = DB,
    host: str = typer.Option("127.0.0.1", help="interface to bind; the default keeps it on this machine"),
    port: int = typer.Option(8000, help="TCP port"),
    admin_link: bool = typer.Option(True, help="print an admin link when no live admin token exists"),
    max_body_mb: float = typer.Option(
        16.0,
        "--max-body-mb",
        min=0.01,
        help="largest task upload accepted (other requests: 64 KiB); 413 above",
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="comma-separated addresses of your reverse proxies whose X-Forwarded-For is trusted "
        "(default: none, so the login limit per address uses the real peer address)",
    ),
) -> None:
    """Run the annotation service (annotators at /, admin at /admin)."""
    import uvicorn

    from alignlab.app.service import create_app

    database = _open(db)
    if admin_link:
        with database.session() as s:
            live = s.scalar(
                select(Token.id).where(
                    Token.role == "admin", ~Token.revoked, Token.expires_at > store.utcnow()
                )
            )
            if live is None:
                token, _ = store.issue_token(s, "admin", timedelta(days=30), label="serve")
                typer.echo(f"admin page: http://{host}:{port}/admin#token={token}  (valid 30 days)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: listening on {host}: put it behind HTTPS before people use it over a network", err=True
        )
    # uvicorn.Server, not uvicorn.run: run() swallows the Ctrl-C that stopped the server and exits 0; the
    # server re-raises the signal once it has shut down cleanly, so Ctrl-C exits 130 and SIGTERM 143.
    config = uvicorn.Config(
        create_app(database, max_body=int(max_body_mb * 1024 * 1024)),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default; a client reaching the server directly
        # could then pick its own address and dodge the per-address login limit. Trust only named proxies.
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or "",
    )
    uvicorn.Server(config).run()


@app.command()
def migrate(db: str = DB) -> None:
    """Create the schema or upgrade an older database to this version (data kept)."""
    from alignlab.app.db import current_revision

    database = _open(db)
    typer.echo(f"database at revision {current_revision(database.engine)}")


@app.command("create-project")
def create_project(
    name: str = typer.Argument(..., help="project name"),
    db: str = DB,
    kind: list[str] = typer.Option(
        ["pairwise"], help="feedback to collect: pairwise, ranking, rating, critique, spans"
    ),
    aspect: list[str] = typer.Option(
        [], help="Likert aspect NAME=MIN-MAX, e.g. helpfulness=1-5 (for rating)"
    ),
    span_label: list[str] = typer.Option([], help="labels for marked spans, e.g. wrong"),
    per_task: int = typer.Option(1, help="annotators per task"),
    lease_minutes: int = typer.Option(60, help="minutes an annotator holds a served task"),
    instructions: str = typer.Option("", help="text shown above every task"),
) -> None:
    """Create a project (then upload tasks and invite annotators)."""
    aspects = {}
    for spec in aspect:
        aspect_name, _, scale = spec.partition("=")
        low, _, high = (scale or "1-5").partition("-")
        if not (low.strip().lstrip("-").isdigit() and high.strip().isdigit()):
            _fail(f"--aspect {spec!r}: write NAME=MIN-MAX, e.g. helpfulness=1-5")
        aspects[aspect_name] = {"min": int(low), "max": int(high)}
    with _open(db).session() as s:
        try:
            project = store.create_project(
                s, name, kind, aspects, span_label, per_task, lease_minutes, instructions
            )
        except store.AppError as err:
            _fail(err.message)
        typer.echo(json.dumps(store.project_dict(project)))


@app.command()
def upload(project: str, path: Path, db: str = DB) -> None:
    """Add tasks to a project from an alignlab records file."""
    try:
        records = read_records_file(path)
    except (RecordError, OSError) as err:
        _fail(str(err))
    with _open(db).session() as s:
        try:
            ids = store.add_tasks(s, store.project_by_name(s, project), records)
        except store.AppError as err:
            _fail(err.message)
    typer.echo(f"added {len(ids)} tasks to {project}")


@app.command()
def invite(
    project: str,
    name: str,
    db: str = DB,
    password: str = typer.Option(None, help="also allow logging in with this password (stored hashed)"),
    expires_days: float = typer.Option(14.0, help="days the invitation token stays valid"),
    base_url: str = typer.Option("http://127.0.0.1:8000", help="where annotators reach the service"),
) -> None:
    """Make an annotator and print their invitation link."""
    with _open(db).session() as s:
        try:
            p = store.project_by_name(s, project)
            who = store.create_annotator(s, p, name, password)
            token, _ = store.issue_token(s, "annotator", timedelta(days=expires_days), p.id, who.id, "invite")
        except store.AppError as err:
            _fail(err.message)
    typer.echo(f"{base_url.rstrip('/')}/#token={token}")


@app.command("admin-token")
def admin_token(db: str = DB, expires_days: float = typer.Option(30.0)) -> None:
    """Print a new admin token (open /admin#token=... with it)."""
    with _open(db).session() as s:
        token, _ = store.issue_token(s, "admin", timedelta(days=expires_days), label="cli")
    typer.echo(token)


@app.command("judge-token")
def judge_token(project: str, db: str = DB, expires_days: float = typer.Option(30.0)) -> None:
    """Print a token for alignlab.judges.human.HumanJudge on PROJECT."""
    with _open(db).session() as s:
        try:
            p = store.project_by_name(s, project)
        except store.AppError as err:
            _fail(err.message)
        token, _ = store.issue_token(s, "judge", timedelta(days=expires_days), p.id, label="cli")
    typer.echo(token)


@app.command()
def projects(db: str = DB) -> None:
    """List projects with their progress."""
    with _open(db).session() as s:
        for p in s.scalars(select(Project).order_by(Project.id)):
            typer.echo(json.dumps({"name": p.name, "kinds": p.kinds, **progress(s, p)}))


@app.command()
def stats(project: str, db: str = DB) -> None:
    """Agreement, per-annotator numbers and position bias, as JSON."""
    with _open(db).session() as s:
        try:
            typer.echo(json.dumps(project_stats(s, store.project_by_name(s, project)), indent=2))
        except store.AppError as err:
            _fail(err.message)


@app.command()
def export(
    project: str,
    db: str = DB,
    format: str = typer.Option("records", help=f"one of {FORMATS} (trl: prompt/chosen/rejected)"),
    aggregate: str = typer.Option("majority", help=f"one of {AGGREGATES}"),
    output: Path = typer.Option(None, "--output", "-o", help="JSONL file (default: standard output)"),
) -> None:
    """Export the labels of PROJECT as alignlab records or TRL rows (JSONL)."""
    if format not in FORMATS or aggregate not in AGGREGATES:
        _fail(f"--format must be one of {FORMATS} and --aggregate one of {AGGREGATES}")
    with _open(db).session() as s:
        try:
            rows = export_rows(s, store.project_by_name(s, project), format, aggregate)
        except store.AppError as err:
            _fail(err.message)
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    if output:
        out.close()
        typer.echo(f"wrote {len(rows)} rows to {output}", err=True)


if __name__ == "__main__":
    app()
