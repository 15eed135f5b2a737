"""Routes for annotators: log in, see their own queue, submit labels. Nothing here reveals other labels."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from alignlab.app import store
from alignlab.app.dependencies import Caller, annotator
from alignlab.app.models import Annotator, Label, Project, Task

router = APIRouter(prefix="/api")
LOGIN_TTL = timedelta(hours=12)
MAX_ID = 2**63 - 1  # database ids are signed 64-bit integers


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: Annotated[StrictStr, Field(max_length=200)]
    name: Annotated[StrictStr, Field(max_length=200)]
    password: Annotated[StrictStr, Field(max_length=1000)]


class LabelIn(BaseModel):
    """A label in displayed positions; the values are checked by ``labels.canonical_label``."""

    model_config = ConfigDict(extra="forbid")
    assignment_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
    client_key: StrictStr  # store.submit_label checks its length
    choice: Any = None
    order: Any = None
    ratings: Any = None
    critique: Any = None
    spans: Any = None

    def payload(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("choice", "order", "ratings", "critique", "spans")}


@router.post("/login")
def login(body: LoginIn, request: Request) -> dict[str, Any]:
    now = request.app.state.clock()
    client = request.client.host if request.client else None
    token = store.login(request.app.state.db, body.project, body.name, body.password, LOGIN_TTL, now, client)
    if token is None:
        raise store.AppError(401, "wrong project, name or password")
    return {"token": token, "expires_at": (now + LOGIN_TTL).isoformat() + "Z"}


def _counts(s, project: Project, who: Annotator, now) -> dict[str, int]:  # type: ignore[no-untyped-def]
    done = s.scalar(select(func.count(Label.id)).where(Label.annotator_id == who.id)) or 0
    return {"done": done, "available": store.count_available(s, project, who, now)}


@router.get("/me")
def me(request: Request, caller: Caller = Depends(annotator)) -> dict[str, Any]:
    with request.app.state.db.session() as s:
        who = s.get(Annotator, caller.annotator_id)
        project = s.get(Project, caller.project_id)
        return {
            "name": who.name,
            "project": store.project_dict(project),
            **_counts(s, project, who, request.app.state.clock()),
        }


@router.get("/next")
def next_task(request: Request, caller: Caller = Depends(annotator)) -> dict[str, Any]:
    """The annotator's current task (the same one again until it is answered), or null when none is left."""
    now = request.app.state.clock()
    with request.app.state.db.session() as s:
        who = s.get(Annotator, caller.annotator_id)
        project = s.get(Project, caller.project_id)
        assignment = store.next_assignment(s, project, who, now)
        view = store.task_view(s.get(Task, assignment.task_id), assignment) if assignment else None
        counts = _counts(s, project, who, now)
    if view is not None:
        counts["available"] = max(counts["available"], 1)  # the task in hand is still to do
    return {"task": view, **counts}


@router.post("/labels")
def submit(body: LabelIn, request: Request, caller: Caller = Depends(annotator)) -> dict[str, Any]:
    """Store a label and answer only after it is committed; a retry with the same client_key is a no-op."""
    now = request.app.state.clock()
    db = request.app.state.db
    try:
        with db.session() as s:
            who = s.get(Annotator, caller.annotator_id)
            project = s.get(Project, caller.project_id)
            label, duplicate = store.submit_label(
                s, project, who, body.assignment_id, body.client_key, body.payload(), now
            )
            label_id = label.id
    except IntegrityError:
        # The same submission raced itself (a retry while the first was still in flight): the first won.
        with db.session() as s:
            label = store.find_label(s, caller.annotator_id, body.assignment_id)
            if label is None or label.client_key != body.client_key:
                raise store.AppError(409, "you have answered this task already; take the next one") from None
            label_id, duplicate = label.id, True
    return {"label_id": label_id, "duplicate": duplicate}
