"""Database engines and schema migrations.

SQLite (the default) runs in WAL mode with ``synchronous=FULL``, so an acknowledged write survives even a
power cut, and every transaction starts with ``BEGIN IMMEDIATE``: writers queue on the busy timeout instead
of failing when two read-then-write transactions race. PostgreSQL is used through psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from alignlab.app.paths import default_db_path

MIGRATIONS = Path(__file__).parent / "migrations"


def default_db_url() -> str:
    """SQLite in the user data folder (``alignlab.app.paths``), which is created if missing."""
    path = default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def normalize_url(db: str) -> str:
    """Accept a SQLAlchemy URL, a ``postgresql://`` URL (made to use psycopg 3) or a plain file path."""
    if "://" not in db:
        return f"sqlite:///{Path(db).expanduser()}"
    if db.startswith("postgres://"):
        db = "postgresql://" + db[len("postgres://") :]
    if db.startswith("postgresql://"):
        db = "postgresql+psycopg://" + db[len("postgresql://") :]
    if not (db.startswith("sqlite") or db.startswith("postgresql")):
        raise ValueError(f"--db {db!r}: only sqlite:///PATH and postgresql://USER@HOST/DB are supported")
    return db


def make_engine(db: str | None = None) -> Engine:
    url = make_url(normalize_url(db or default_db_url()))
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError("use a file for the SQLite database (an in-memory one is lost per connection)")
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (the driver's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (alembic), keeping the data already there."""
    _run_alembic(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run_alembic(engine, command.downgrade, revision)


def _run_alembic(engine: Engine, step, revision: str) -> None:  # type: ignore[no-untyped-def]
    config = alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite changes some tables by copying them; with foreign keys on, dropping the old copy would
            # cascade-delete every label that points at it. The pragma works only outside a transaction.
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config, revision)
        finally:
            if sqlite:
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


class Database:
    """An engine and its session factory; ``with db.session() as s:`` commits on success."""

    def __init__(self, url: str | None = None, upgrade: bool = True):
        """``url``: a SQLAlchemy URL, a ``postgresql://`` URL or a file path; None: ``default_db_url()``."""
        self.url = normalize_url(url or default_db_url())
        self.engine = make_engine(self.url)
        if upgrade:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
