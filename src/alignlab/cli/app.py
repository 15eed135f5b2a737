"""``alignlab app ...``: run the feedback service and manage projects from the shell."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from alignlab.app.paths import DATA_ENV, default_db_path

if TYPE_CHECKING:
    from alignlab.app.db import Database

# SQLAlchemy, alembic and the app's modules load inside the commands (about 2 s): `--help` answers at once.
app = typer.Typer(help="Collect human feedback: a web app for annotators, backed by SQLite or PostgreSQL.")

FORMATS, AGGREGATES = ("records", "trl"), ("all", "majority", "mean")  # export.py's (tests/app/test_cli.py)
DB = typer.Option(
    None,
    "--db",
    envvar="ALIGNLAB_APP_DB",
    show_default=False,
    help=f"sqlite:///PATH, a file path, or postgresql://... [default: {default_db_path()}, the user data "
    f"folder; ${DATA_ENV} moves it]",
)


# The default database in full, at the width of the page: in the --db cell of the options table a long path
# is cut short ("/home/you/.local/shar…") on an 80-column terminal.
DB_EPILOG = f"Default database (no --db, no $ALIGNLAB_APP_DB): {default_db_path()}; ${DATA_ENV} moves it."


@app.callback()
def _needs_the_extra() -> None:
    """Commands need the app extra; say so in one line (the imports themselves wait for the command)."""
    import importlib.util

    missing = [
        m for m in ("sqlalchemy", "alembic", "fastapi", "uvicorn") if importlib.util.find_spec(m) is None
    ]
    if missing:
        _fail(
            f"the feedback app needs its extra: pip install 'alignlab[app]' (missing: {', '.join(missing)})"
        )


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


OLD_DEFAULT = Path("alignlab_feedback.db")  # the default before 2026-12: a file in the working directory


def _open(db: str | None) -> Database:
    from alignlab.app.db import Database

    if db is None and OLD_DEFAULT.exists():
        typer.echo(
            f"note: ./{OLD_DEFAULT} (the old default database) is not used any more; the default is now "
            f"{default_db_path()}. To keep using it: --db {OLD_DEFAULT}",
            err=True,
        )

    try:
        return Database(db)
    except Exception as err:  # a wrong URL or an unreachable server: say which, without a traceback
        _fail(f"cannot open the database {db!r}: {err}")
        raise


@app.command(epilog=DB_EPILOG)
def serve(
    db: str | None = DB,
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
    """Run the annotation service (annotators at /, admin at /admin); prints where it listens and how to log in."""
    import uvicorn

    from alignlab.app.service import create_app

    database = _open(db)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    typer.echo(f"database: {_shown_url(database)}")
    if admin_link:
        typer.echo(_admin_login(database, base, db))
    typer.echo(
        f"annotators: {base}/ with the invitation link the admin page (or `alignlab app invite`) gives each "
        "one, or log in there with project, name and password"
    )
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
    _announcing_server(config, f"listening on {base}  (Ctrl-C stops it)").run()


def _shown_url(database: Database) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database.url).render_as_string(hide_password=True)


def _admin_login(database: Database, base: str, db: str | None) -> str:
    """How the admin gets in: a new link when no admin token is live, else where to get another one."""
    from sqlalchemy import select

    from alignlab.app import store
    from alignlab.app.models import Token

    with database.session() as s:
        live = s.scalar(
            select(Token.id).where(Token.role == "admin", ~Token.revoked, Token.expires_at > store.utcnow())
        )
        if live is None:
            token, _ = store.issue_token(s, "admin", timedelta(days=30), label="serve")
            return f"admin page: {base}/admin#token={token}  (valid 30 days; keep it private)"
    again = "alignlab app admin-token" + (f" --db {db}" if db else "")
    return (
        f"admin page: {base}/admin  (the admin link printed at the first start still works; "
        f"`{again}` prints a new token: open {base}/admin#token=TOKEN)"
    )


def _announcing_server(config, line: str):  # type: ignore[no-untyped-def]
    """A uvicorn.Server that prints ``line`` once its socket is bound (not before: the port may be taken)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
            await super().startup(sockets=sockets)
            if self.started:
                typer.echo(line)

    return AnnouncingServer(config)


@app.command(epilog=DB_EPILOG)
def migrate(db: str | None = DB) -> None:
    """Create the schema or upgrade an older database to this version (data kept)."""
    from alignlab.app.db import current_revision

    database = _open(db)
    typer.echo(f"database at revision {current_revision(database.engine)}")


@app.command("create-project", epilog=DB_EPILOG)
def create_project(
    name: str = typer.Argument(..., help="project name"),
    db: str | None = DB,
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
    from alignlab.app import store

    with _open(db).session() as s:
        try:
            project = store.create_project(
                s, name, kind, aspects, span_label, per_task, lease_minutes, instructions
            )
        except store.AppError as err:
            _fail(err.message)
        typer.echo(json.dumps(store.project_dict(project)))


@app.command(epilog=DB_EPILOG)
def upload(project: str, path: Path, db: str | None = DB) -> None:
    """Add tasks to a project from an alignlab records file."""
    from alignlab.app import store
    from alignlab.app.records_io import read_records_file
    from alignlab.data.records import RecordError

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


@app.command(epilog=DB_EPILOG)
def invite(
    project: str,
    name: str,
    db: str | None = DB,
    password: str = typer.Option(None, help="also allow logging in with this password (stored hashed)"),
    expires_days: float = typer.Option(14.0, help="days the invitation token stays valid"),
    base_url: str = typer.Option("http://127.0.0.1:8000", help="where annotators reach the service"),
) -> None:
    """Make an annotator and print their invitation link."""
    from alignlab.app import store

    try:
        password_hash = store.hash_new_password(password)  # scrypt before the write transaction, not in it
    except store.AppError as err:
        _fail(err.message)
    with _open(db).session() as s:
        try:
            p = store.project_by_name(s, project)
            who = store.create_annotator(s, p, name, password_hash=password_hash)
            token, _ = store.issue_token(s, "annotator", timedelta(days=expires_days), p.id, who.id, "invite")
        except store.AppError as err:
            _fail(err.message)
    typer.echo(f"{base_url.rstrip('/')}/#token={token}")


@app.command("admin-token", epilog=DB_EPILOG)
def admin_token(db: str | None = DB, expires_days: float = typer.Option(30.0)) -> None:
    """Print a new admin token (open /admin#token=... with it)."""
    from alignlab.app import store

    with _open(db).session() as s:
        token, _ = store.issue_token(s, "admin", timedelta(days=expires_days), label="cli")
    typer.echo(token)


@app.command("judge-token", epilog=DB_EPILOG)
def judge_token(project: str, db: str | None = DB, expires_days: float = typer.Option(30.0)) -> None:
    """Print a token for alignlab.judges.human.HumanJudge on PROJECT."""
    from alignlab.app import store

    with _open(db).session() as s:
        try:
            p = store.project_by_name(s, project)
        except store.AppError as err:
            _fail(err.message)
        token, _ = store.issue_token(s, "judge", timedelta(days=expires_days), p.id, label="cli")
    typer.echo(token)


@app.command(epilog=DB_EPILOG)
def projects(db: str | None = DB) -> None:
    """List projects with their progress."""
    from sqlalchemy import select

    from alignlab.app.models import Project
    from alignlab.app.stats import progress

    with _open(db).session() as s:
        for p in s.scalars(select(Project).order_by(Project.id)):
            typer.echo(json.dumps({"name": p.name, "kinds": p.kinds, **progress(s, p)}))


@app.command(epilog=DB_EPILOG)
def stats(project: str, db: str | None = DB) -> None:
    """Agreement, per-annotator numbers and position bias, as JSON."""
    from alignlab.app import store
    from alignlab.app.stats import project_stats

    with _open(db).session() as s:
        try:
            typer.echo(json.dumps(project_stats(s, store.project_by_name(s, project)), indent=2))
        except store.AppError as err:
            _fail(err.message)


@app.command(epilog=DB_EPILOG)
def export(
    project: str,
    db: str | None = DB,
    format: str = typer.Option("records", help=f"one of {FORMATS} (trl: prompt/chosen/rejected)"),
    aggregate: str = typer.Option("majority", help=f"one of {AGGREGATES}"),
    output: Path = typer.Option(None, "--output", "-o", help="JSONL file (default: standard output)"),
) -> None:
    """Export the labels of PROJECT as alignlab records or TRL rows (JSONL)."""
    from alignlab.app import store
    from alignlab.app.export import export_rows

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
