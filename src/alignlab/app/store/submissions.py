"""Storing an annotator's label for an assignment (idempotent per client key) and completing tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from alignlab.app.labels import LabelError, canonical_label
from alignlab.app.models import Annotator, Assignment, Label, Project, Task
from alignlab.app.store.errors import AppError


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
