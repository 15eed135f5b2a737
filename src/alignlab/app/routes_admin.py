"""Admin routes: projects, task uploads, invitations, progress, statistics, export. Admin token only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import func, select, update

from alignlab.app import store
from alignlab.app.dependencies import Caller, admin
from alignlab.app.export import AGGREGATES, FORMATS, export_rows
from alignlab.app.models import Annotator, Label, Project, Token
from alignlab.app.records_io import parse_jsonl
from alignlab.app.stats import progress, project_stats
from alignlab.data.records import Record, RecordError

router = APIRouter(prefix="/api/admin", dependencies=[Depends(admin)])


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    kinds: list[StrictStr] = Field(default_factory=lambda: ["pairwise"])
    aspects: dict[str, dict[str, Any]] = Field(default_factory=dict)
    span_labels: list[StrictStr] = Field(default_factory=list)
    per_task: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    lease_minutes: Annotated[StrictInt, Field(ge=1, le=7 * 24 * 60)] = 60
    instructions: Annotated[StrictStr, Field(max_length=20_000)] = ""


class TasksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[Any]


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    password: Annotated[StrictStr, Field(max_length=1000)] | None = None
    expires_days: float = Field(default=14, gt=0, le=366)


class JudgeTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_days: float = Field(default=30, gt=0, le=366)


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_days: float = Field(default=14, gt=0, le=366)


def _project(s, project_id: int) -> Project:  # type: ignore[no-untyped-def]
    return store.project_by_id(s, project_id)


@router.post("/projects")
def create_project(body: ProjectIn, request: Request) -> dict[str, Any]:
    with request.app.state.db.session() as s:
        project = store.create_project(s, now=request.app.state.clock(), **body.model_dump())
        return store.project_dict(project)


@router.get("/projects")
def list_projects(request: Request) -> list[dict[str, Any]]:
    with request.app.state.db.session() as s:
        projects = s.scalars(select(Project).order_by(Project.id))
        return [{**store.project_dict(p), "progress": progress(s, p)} for p in projects]


def _add(request: Request, project_id: int, records: list[Record]) -> dict[str, Any]:
    with request.app.state.db.session() as s:
        ids = store.add_tasks(s, _project(s, project_id), records, now=request.app.state.clock())
    return {"added": len(ids), "task_ids": ids}


@router.post("/projects/{project_id}/tasks")
def upload_tasks(project_id: int, body: TasksIn, request: Request) -> dict[str, Any]:
    """Tasks as a JSON list of alignlab records."""
    try:
        records = [Record.from_dict(obj, f"records[{i}]") for i, obj in enumerate(body.records)]
    except RecordError as err:
        raise store.AppError(422, str(err)) from None
    return _add(request, project_id, records)


@router.post("/projects/{project_id}/tasks.jsonl")
async def upload_tasks_jsonl(project_id: int, request: Request) -> dict[str, Any]:
    """Tasks as the raw text of a JSONL records file (what the admin page sends)."""
    try:
        records = parse_jsonl(await request.body(), "upload")
    except RecordError as err:
        raise store.AppError(422, str(err)) from None
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_add, request, project_id, records)


def _invitation(request: Request, s, project: Project, who: Annotator, days: float, now) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    token, row = store.issue_token(s, "annotator", timedelta(days=days), project.id, who.id, "invite", now)
    return {
        "annotator_id": who.id,
        "name": who.name,
        "token": token,
        "link": f"{str(request.base_url).rstrip('/')}/#token={token}",
        "expires_at": row.expires_at.isoformat() + "Z",
    }


@router.post("/projects/{project_id}/annotators")
def invite(project_id: int, body: InviteIn, request: Request) -> dict[str, Any]:
    """Make an annotator and an invitation token; the link carries it after '#', so it is never logged."""
    now = request.app.state.clock()
    password_hash = store.hash_new_password(body.password)  # scrypt outside the write transaction
    with request.app.state.db.session() as s:
        project = _project(s, project_id)
        who = store.create_annotator(s, project, body.name, now, password_hash=password_hash)
        return _invitation(request, s, project, who, body.expires_days, now)


def _annotator(s, project_id: int, annotator_id: int) -> Annotator:  # type: ignore[no-untyped-def]
    who = s.get(Annotator, annotator_id)
    if who is None or who.project_id != project_id:
        raise store.AppError(404, f"project {project_id} has no annotator {annotator_id}")
    return who


@router.post("/projects/{project_id}/annotators/{annotator_id}/link")
def new_link(project_id: int, annotator_id: int, body: LinkIn, request: Request) -> dict[str, Any]:
    """Another invitation link for an existing annotator (tokens are stored hashed, so a lost link cannot be
    shown again; earlier links keep working until they expire or the annotator is disabled)."""
    now = request.app.state.clock()
    with request.app.state.db.session() as s:
        project = _project(s, project_id)
        who = _annotator(s, project_id, annotator_id)
        if not who.active:
            raise store.AppError(409, f"annotator {who.name!r} is disabled")
        return _invitation(request, s, project, who, body.expires_days, now)


@router.get("/projects/{project_id}/annotators")
def list_annotators(project_id: int, request: Request) -> list[dict[str, Any]]:
    """Each annotator: whether active, whether a password is set, labels given, and their latest live
    invitation's expiry (``null`` when none is live: make a new link)."""
    now = request.app.state.clock()
    with request.app.state.db.session() as s:
        _project(s, project_id)
        labels = dict(
            s.execute(
                select(Label.annotator_id, func.count(Label.id))
                .join(Annotator, Annotator.id == Label.annotator_id)
                .where(Annotator.project_id == project_id)
                .group_by(Label.annotator_id)
            ).all()
        )
        links = dict(
            s.execute(
                select(Token.annotator_id, func.max(Token.expires_at))
                .join(Annotator, Annotator.id == Token.annotator_id)
                .where(
                    Annotator.project_id == project_id,
                    Token.label == "invite",
                    ~Token.revoked,
                    Token.expires_at > now,
                )
                .group_by(Token.annotator_id)
            ).all()
        )
        rows = s.scalars(select(Annotator).where(Annotator.project_id == project_id).order_by(Annotator.id))
        return [
            {
                "id": a.id,
                "name": a.name,
                "active": a.active,
                "password": bool(a.password_hash),
                "labels": int(labels.get(a.id, 0)),
                "link_expires_at": links[a.id].isoformat() + "Z" if a.id in links else None,
            }
            for a in rows
        ]


@router.post("/projects/{project_id}/annotators/{annotator_id}/disable")
def disable(project_id: int, annotator_id: int, request: Request) -> dict[str, Any]:
    """Stop an annotator: their tokens stop working at once; their labels so far are kept."""
    with request.app.state.db.session() as s:
        who = _annotator(s, project_id, annotator_id)
        who.active = False
        s.execute(update(Token).where(Token.annotator_id == who.id).values(revoked=True))
    return {"disabled": annotator_id}


@router.post("/projects/{project_id}/judge-token")
def judge_token(project_id: int, body: JudgeTokenIn, request: Request) -> dict[str, Any]:
    """A token for ``HumanJudge``: it may enqueue pairs into this project and read their answers only."""
    now = request.app.state.clock()
    with request.app.state.db.session() as s:
        project = _project(s, project_id)
        token, row = store.issue_token(
            s, "judge", timedelta(days=body.expires_days), project.id, None, "judge", now
        )
    return {"token": token, "expires_at": row.expires_at.isoformat() + "Z"}


@router.get("/projects/{project_id}/progress")
def project_progress(project_id: int, request: Request) -> dict[str, Any]:
    with request.app.state.db.session() as s:
        return progress(s, _project(s, project_id))


@router.get("/projects/{project_id}/stats")
def stats(project_id: int, request: Request) -> dict[str, Any]:
    with request.app.state.db.session() as s:
        return project_stats(s, _project(s, project_id))


@router.get("/projects/{project_id}/export")
def export(
    project_id: int, request: Request, format: str = "records", aggregate: str = "majority"
) -> Response:
    if format not in FORMATS or aggregate not in AGGREGATES:
        raise store.AppError(422, f"format must be one of {FORMATS} and aggregate one of {AGGREGATES}")
    with request.app.state.db.session() as s:
        project = _project(s, project_id)
        rows = export_rows(s, project, format, aggregate)
    body = "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows)
    filename = f"project-{project_id}-{format}-{aggregate}.jsonl"
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/whoami")
def whoami(caller: Caller = Depends(admin)) -> dict[str, Any]:
    return {"role": "admin", "token_id": caller.token_id}
