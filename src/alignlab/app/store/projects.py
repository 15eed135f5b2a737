"""Projects and their tasks: create a project, find it, describe it, and store records as its tasks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alignlab.app.labels import LabelError, check_project_kinds
from alignlab.app.models import Project, Task
from alignlab.app.store.errors import AppError, utcnow
from alignlab.data.records import Record


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
