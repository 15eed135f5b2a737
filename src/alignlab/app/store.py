"""Operations on the feedback database: projects, annotators, tokens, tasks, assignments, labels.

Each function works inside a caller's session (one transaction); the routes and the CLI both call these.
Times are naive UTC datetimes (SQLite has no time zones), passed in as ``now`` so tests can move the clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alignlab.app import security
from alignlab.app.labels import LabelError, canonical_label, check_project_kinds
from alignlab.app.models import Annotator, Assignment, Label, LoginFailure, Project, Task, Token
from alignlab.data.records import Record

ROLES = ("admin", "annotator", "judge")


class AppError(Exception):
    """A request the service refuses; ``status`` is the HTTP status to answer with, ``retry_after`` the
    seconds a client should wait (sent as ``Retry-After``)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# ----------------------------------------------------------------------------------------------- projects
def create_project(
    s: Session,
    name: str,
    kinds: list[str],
    aspects: dict[str, Any] | None = None,
    span_labels: list[str] | None = None,
    per_task: int = 1,
    lease_minutes: int = 60,
    instructions: str = "",
    now: datetime | None = None,
) -> Project:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AppError(422, "name: give the project a name of 1 to 200 characters")
    try:
        check_project_kinds(kinds, aspects or {}, span_labels or [])
    except LabelError as err:
        raise AppError(422, str(err)) from None
    if not isinstance(per_task, int) or not 1 <= per_task <= 100:
        raise AppError(422, "per_task: the number of annotators per task must be from 1 to 100")
    if not isinstance(lease_minutes, int) or not 1 <= lease_minutes <= 7 * 24 * 60:
        raise AppError(422, "lease_minutes must be from 1 to 10080 (a week)")
    if s.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise AppError(409, f"a project named {name!r} exists already; pick another name")
    project = Project(
        name=name,
        kinds=list(kinds),
        aspects=dict(aspects or {}),
        span_labels=list(span_labels or []),
        per_task=per_task,
        lease_minutes=lease_minutes,
        instructions=instructions or "",
        created_at=now or utcnow(),
    )
    s.add(project)
    s.flush()
    return project


def project_by_name(s: Session, name: str) -> Project:
    project = s.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise AppError(404, f"no project named {name!r}; `alignlab app projects` lists them")
    return project


def project_by_id(s: Session, project_id: int) -> Project:
    project = s.get(Project, project_id)
    if project is None:
        raise AppError(404, f"no project with id {project_id}")
    return project


def project_dict(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "kinds": project.kinds,
        "aspects": project.aspects,
        "span_labels": project.span_labels,
        "per_task": project.per_task,
        "lease_minutes": project.lease_minutes,
        "instructions": project.instructions,
    }


# ------------------------------------------------------------------------------------------------- tasks
def add_tasks(
    s: Session,
    project: Project,
    records: Sequence[Record],
    origin: str = "upload",
    now: datetime | None = None,
) -> list[int]:
    """Store records as tasks; their feedback (if any) is ignored: annotators give it anew."""
    now = now or utcnow()
    tasks = []
    for n, record in enumerate(records):
        k = record.k
        if "pairwise" in project.kinds and k != 2:
            raise AppError(422, f"record {n} ({record.id}): pairwise projects need 2 completions, it has {k}")
        if "ranking" in project.kinds and k < 2:
            raise AppError(422, f"record {n} ({record.id}): ranking needs at least 2 completions, it has {k}")
        tasks.append(
            Task(
                project_id=project.id,
                external_id=record.id,
                prompt=record.prompt,
                completions=list(record.completions),
                meta=dict(record.meta),
                source=record.source,
                origin=origin,
                complete=False,
                created_at=now,
            )
        )
    s.add_all(tasks)
    s.flush()
    return [t.id for t in tasks]


# ------------------------------------------------------------------------------------ annotators, tokens
def create_annotator(
    s: Session, project: Project, name: str, password: str | None = None, now: datetime | None = None
) -> Annotator:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AppError(422, "name: give the annotator a name of 1 to 200 characters")
    exists = select(Annotator.id).where(Annotator.project_id == project.id, Annotator.name == name)
    if s.scalar(exists) is not None:
        raise AppError(409, f"project {project.name!r} has an annotator named {name!r} already")
    try:
        password_hash = security.hash_password(password) if password else None
    except ValueError as err:
        raise AppError(422, str(err)) from None
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


def login(
    s: Session,
    project_name: str,
    name: str,
    password: str,
    ttl: timedelta,
    now: datetime,
    client: str | None = None,
) -> str | None:
    """A new annotator token, or None for a wrong project, name or password (the failure is recorded and
    commits with the session; the caller answers 401). Raises 429 once the failures in ``LOGIN_WINDOW``
    reach the limit for the name or the client address, before any password is checked."""
    keys = {f"name:{project_name}/{name}"[:450]: (MAX_FAILURES_PER_NAME, "for this name")}
    if client:
        keys[f"client:{client}"[:450]] = (MAX_FAILURES_PER_CLIENT, "from this address")
    _throttle(s, keys, now)
    project = s.scalar(select(Project).where(Project.name == project_name))
    annotator = None
    if project is not None:
        annotator = s.scalar(
            select(Annotator).where(Annotator.project_id == project.id, Annotator.name == name)
        )
    stored = annotator.password_hash if annotator is not None and annotator.active else None
    if not security.check_password(password, stored) or annotator is None:
        s.add_all(LoginFailure(key=key, at=now) for key in keys)
        # Rows older than the window are never read again.
        s.execute(LoginFailure.__table__.delete().where(LoginFailure.at <= now - LOGIN_WINDOW))
        return None
    s.execute(LoginFailure.__table__.delete().where(LoginFailure.key == next(iter(keys))))
    plain, _ = issue_token(s, "annotator", ttl, annotator.project_id, annotator.id, "login", now)
    return plain


# ----------------------------------------------------------------------------------------- assignments
def _open_slots(project: Project, now: datetime):  # type: ignore[no-untyped-def]
    """SQL count of a task's slots that are taken (labelled, or served with a lease still running)."""
    return (
        select(func.count(Assignment.id))
        .where(Assignment.task_id == Task.id, or_(Assignment.done, Assignment.expires_at > now))
        .scalar_subquery()
    )


def _available_tasks(project: Project, annotator: Annotator, now: datetime):  # type: ignore[no-untyped-def]
    mine = select(Assignment.id).where(Assignment.task_id == Task.id, Assignment.annotator_id == annotator.id)
    return select(Task.id).where(
        Task.project_id == project.id,
        ~Task.complete,
        ~mine.exists(),
        _open_slots(project, now) < project.per_task,
    )


def count_available(s: Session, project: Project, annotator: Annotator, now: datetime) -> int:
    """Unfinished tasks this annotator has not been given yet: an upper bound on the work left for them
    (cheap to count; some may fill up with other annotators first)."""
    mine = select(Assignment.id).where(Assignment.task_id == Task.id, Assignment.annotator_id == annotator.id)
    query = select(func.count(Task.id)).where(Task.project_id == project.id, ~Task.complete, ~mine.exists())
    return s.scalar(query) or 0


def next_assignment(
    s: Session, project: Project, annotator: Annotator, now: datetime, rng: random.Random | None = None
) -> Assignment | None:
    """The annotator's unfinished assignment, or a new one on a task with a free slot (None: no work left)."""
    lease = timedelta(minutes=project.lease_minutes)
    held = s.scalar(
        select(Assignment)
        .where(Assignment.annotator_id == annotator.id, ~Assignment.done)
        .order_by(Assignment.id)
        .limit(1)
    )
    if held is not None:
        held.expires_at = now + lease
        return held
    rng = rng or random.Random()
    # Judge tasks first (a trainer waits for them; "judge" sorts before "upload"), then uploads in order.
    # This order walks the (project_id, complete, origin, id) index and stops after a few open tasks.
    query = _available_tasks(project, annotator, now).order_by(Task.origin, Task.id).limit(8)
    ranked = sorted(
        (origin, rng.random(), task_id) for task_id, origin in s.execute(query.add_columns(Task.origin))
    )
    # Random within a level: simultaneous requests spread over several tasks instead of racing for one.
    candidates = [task_id for _, _, task_id in ranked]
    for task_id in candidates:
        task = s.get(Task, task_id)
        assert task is not None
        order = list(range(len(task.completions)))
        rng.shuffle(order)
        taken = {a.slot: a for a in s.scalars(select(Assignment).where(Assignment.task_id == task_id))}
        free = [slot for slot in range(project.per_task) if slot not in taken]
        if free:
            assignment = Assignment(
                task_id=task_id,
                annotator_id=annotator.id,
                slot=free[0],
                order=order,
                served_at=now,
                expires_at=now + lease,
                done=False,
            )
            try:
                with s.begin_nested():
                    s.add(assignment)
                    s.flush()
                return assignment
            except IntegrityError:  # another annotator took the slot at the same moment
                continue
        for stale in taken.values():
            if stale.done or stale.expires_at > now:
                continue
            # Hand on a slot whose lease ran out; the WHERE clause makes the take-over atomic.
            moved = s.execute(
                update(Assignment)
                .where(Assignment.id == stale.id, ~Assignment.done, Assignment.expires_at <= now)
                .values(annotator_id=annotator.id, order=order, served_at=now, expires_at=now + lease)
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount == 1:
                s.expire(stale)
                return s.get(Assignment, stale.id)
    return None


def task_view(task: Task, assignment: Assignment) -> dict[str, Any]:
    """What the page shows: the completions in the assignment's order, nothing about other annotators."""
    return {
        "assignment_id": assignment.id,
        "task_id": task.id,
        "prompt": task.prompt,
        "completions": [task.completions[i] for i in assignment.order],
    }


# ---------------------------------------------------------------------------------------------- labels
def find_label(s: Session, annotator_id: int, assignment_id: int) -> Label | None:
    return s.scalar(
        select(Label).where(and_(Label.annotator_id == annotator_id, Label.assignment_id == assignment_id))
    )


def submit_label(
    s: Session,
    project: Project,
    annotator: Annotator,
    assignment_id: int,
    client_key: str,
    payload: dict[str, Any],
    now: datetime,
) -> tuple[Label, bool]:
    """Store a label; a repeat of an acknowledged submission (same client_key) returns it unchanged.

    Returns (label, duplicate). Raises AppError 404 for an assignment that is not this annotator's and
    409 for a second, different answer to the same task.
    """
    if not isinstance(client_key, str) or not 8 <= len(client_key) <= 100:
        raise AppError(422, "client_key: send a unique string of 8 to 100 characters per submission")
    existing = find_label(s, annotator.id, assignment_id)
    if existing is not None:
        if existing.client_key == client_key:
            return existing, True
        raise AppError(409, "you have answered this task already; take the next one")
    assignment = s.get(Assignment, assignment_id)
    if assignment is None or assignment.annotator_id != annotator.id:
        # Same answer for "missing" and "someone else's": ids of other annotators' work are not revealed.
        raise AppError(404, f"assignment {assignment_id} is not in your queue (its lease may have run out)")
    # Lock the task row (PostgreSQL; SQLite transactions are serial anyway) so that the last two votes
    # on a task cannot both miss each other when deciding that the task is complete.
    task = s.get(Task, assignment.task_id, with_for_update=True)
    if task is None or task.project_id != project.id:
        raise AppError(404, f"assignment {assignment_id} is not in your queue")
    try:
        value = canonical_label(
            payload, assignment.order, task.completions, project.kinds, project.aspects, project.span_labels
        )
    except LabelError as err:
        raise AppError(422, str(err)) from None
    label = Label(
        task_id=task.id,
        annotator_id=annotator.id,
        assignment_id=assignment.id,
        client_key=client_key,
        value=value,
        order=list(assignment.order),
        seconds=max((now - assignment.served_at).total_seconds(), 0.0),
        created_at=now,
    )
    assignment.done = True
    s.add(label)
    s.flush()
    _mark_if_complete(s, project, task)
    return label, False


def _mark_if_complete(s: Session, project: Project, task: Task) -> None:
    labels = s.scalar(select(func.count(Label.id)).where(Label.task_id == task.id)) or 0
    if labels >= project.per_task:
        task.complete = True
