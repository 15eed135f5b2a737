"""Who may do what: annotators, bearer tokens (issued, resolved) and password logins with throttling."""

from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alignlab.app import security
from alignlab.app.db import Database
from alignlab.app.models import Annotator, LoginFailure, Project, Token
from alignlab.app.store.errors import AppError, utcnow

ROLES = ("admin", "annotator", "judge")


def hash_new_password(password: str | None) -> str | None:
    """The scrypt hash of a new annotator's password (None for none), or 422 when it is too short. Call it
    before opening the transaction that stores it: scrypt takes tens of milliseconds, and on SQLite every
    transaction holds the write lock from its start (the same reason ``login`` checks outside one)."""
    if not password:
        return None
    try:
        return security.hash_password(password)
    except ValueError as err:
        raise AppError(422, str(err)) from None


def create_annotator(
    s: Session,
    project: Project,
    name: str,
    now: datetime | None = None,
    *,
    password_hash: str | None = None,
) -> Annotator:
    """A new annotator of ``project``; ``password_hash`` from :func:`hash_new_password` (None: links only)."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AppError(422, "name: give the annotator a name of 1 to 200 characters")
    exists = select(Annotator.id).where(Annotator.project_id == project.id, Annotator.name == name)
    if s.scalar(exists) is not None:
        raise AppError(409, f"project {project.name!r} has an annotator named {name!r} already")
    annotator = Annotator(
        project_id=project.id, name=name, password_hash=password_hash, active=True, created_at=now or utcnow()
    )
    s.add(annotator)
    s.flush()
    return annotator


def issue_token(
    s: Session,
    role: str,
    ttl: timedelta,
    project_id: int | None = None,
    annotator_id: int | None = None,
    label: str = "",
    now: datetime | None = None,
) -> tuple[str, Token]:
    """Make a new bearer token; the plain token is returned once and never stored."""
    if role not in ROLES:
        raise AppError(422, f"role must be one of {ROLES}")
    if ttl <= timedelta(0):
        raise AppError(422, "a token's lifetime must be positive")
    now = now or utcnow()
    plain = security.new_token()
    token = Token(
        token_hash=security.hash_token(plain),
        role=role,
        project_id=project_id,
        annotator_id=annotator_id,
        label=label,
        expires_at=now + ttl,
        revoked=False,
        created_at=now,
    )
    s.add(token)
    s.flush()
    return plain, token


def resolve_token(s: Session, plain: str, now: datetime | None = None) -> Token | None:
    """The live token for ``plain``, or None when unknown, revoked, expired or its annotator is disabled."""
    token = s.scalar(select(Token).where(Token.token_hash == security.hash_token(plain)))
    if token is None or token.revoked or token.expires_at <= (now or utcnow()):
        return None
    if token.annotator_id is not None:
        annotator = s.get(Annotator, token.annotator_id)
        if annotator is None or not annotator.active:
            return None
    return token


# Password guessing: at most this many failures per annotator name, and per client address, in a window.
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_CLIENT = 30


def _throttle(s: Session, keys: dict[str, tuple[int, str]], now: datetime) -> None:
    """Refuse (429) when a key has its limit of failures inside the window; say when to try again."""
    for key, (limit, what) in keys.items():
        failures = s.scalars(
            select(LoginFailure.at)
            .where(LoginFailure.key == key, LoginFailure.at > now - LOGIN_WINDOW)
            .order_by(LoginFailure.at.desc())
            .limit(limit)
        ).all()
        if len(failures) >= limit:
            wait = max(1, math.ceil((failures[-1] + LOGIN_WINDOW - now).total_seconds()))
            raise AppError(
                429,
                f"too many failed logins {what}; try again in {(wait + 59) // 60} minute(s)",
                retry_after=wait,
            )


# scrypt takes tens of milliseconds by design, and every SQLite transaction starts with BEGIN IMMEDIATE
# (it holds the write lock): a password checked inside a transaction made a login flood stall every vote.
MAX_CONCURRENT_CHECKS = 2  # a flood queues here instead of taking every CPU
_CHECKS = threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS)


def login(
    db: Database,
    project_name: str,
    name: str,
    password: str,
    ttl: timedelta,
    now: datetime,
    client: str | None = None,
) -> str | None:
    """A new annotator token, or None for a wrong project, name or password (the failure is recorded; the
    caller answers 401). Raises 429 once the failures in ``LOGIN_WINDOW`` reach the limit for the name or
    the client address, before any password is checked.

    Unlike the other functions here it takes the database, not a session, because it runs in three
    steps: (1) a short transaction checks the throttle and reads the stored hash; (2) scrypt runs outside
    any transaction, at most ``MAX_CONCURRENT_CHECKS`` at a time; (3) a short transaction checks the
    throttle again — failures recorded by logins that ran meanwhile count, so concurrent guesses get no
    more tries than sequential ones — then records the failure or issues the token.
    """
    keys = {f"name:{project_name}/{name}"[:450]: (MAX_FAILURES_PER_NAME, "for this name")}
    if client:
        keys[f"client:{client}"[:450]] = (MAX_FAILURES_PER_CLIENT, "from this address")
    with db.session() as s:
        _throttle(s, keys, now)
        found = s.execute(
            select(Annotator.id, Annotator.password_hash, Annotator.active)
            .join(Project, Project.id == Annotator.project_id)
            .where(Project.name == project_name, Annotator.name == name)
        ).first()
    annotator_id = found.id if found is not None and found.active else None
    stored = found.password_hash if annotator_id is not None else None
    with _CHECKS:
        good = security.check_password(password, stored) and annotator_id is not None
    with db.session() as s:
        _throttle(s, keys, now)
        if not good:
            s.add_all(LoginFailure(key=key, at=now) for key in keys)
            # Rows older than the window are never read again.
            s.execute(LoginFailure.__table__.delete().where(LoginFailure.at <= now - LOGIN_WINDOW))
            return None
        annotator = s.get(Annotator, annotator_id)
        if annotator is None or not annotator.active or annotator.password_hash != stored:
            return None  # disabled, or the password changed, while the hash was being checked
        s.execute(LoginFailure.__table__.delete().where(LoginFailure.key == next(iter(keys))))
        plain, _ = issue_token(s, "annotator", ttl, annotator.project_id, annotator.id, "login", now)
        return plain
