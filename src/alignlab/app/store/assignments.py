"""Handing out work: which tasks an annotator may take, the next assignment (with a lease), and what the page shows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alignlab.app.models import Annotator, Assignment, Project, Task


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
    """Unfinished tasks this annotator has not answered yet, the one in hand included: an upper bound on the
    work left for them (cheap to count; some may fill up with other annotators first). So a fresh annotator
    of a 20-task project sees "0 done · 20 to go", not 19 while the first task is on the screen."""
    mine = select(Assignment.id).where(
        Assignment.task_id == Task.id, Assignment.annotator_id == annotator.id, Assignment.done
    )
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
