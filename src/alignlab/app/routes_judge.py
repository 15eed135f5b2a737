"""The human-judge queue: a trainer enqueues pairs and polls for P(a > b). Judge token only."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from alignlab.app import store
from alignlab.app.dependencies import Caller, judge
from alignlab.app.models import Label, Project, Task
from alignlab.app.stats import pair_category
from alignlab.data.records import Record, RecordError

router = APIRouter(prefix="/api/judge")
MAX_BATCH = 1000


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: Any
    a: str
    b: str
    id: str | None = None


class PairsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[PairIn] = Field(max_length=MAX_BATCH)


@router.post("/pairs")
def enqueue(body: PairsIn, request: Request, caller: Caller = Depends(judge)) -> dict[str, Any]:
    try:
        records = [
            Record.from_dict(
                {"prompt": p.prompt, "completions": [p.a, p.b], **({"id": p.id} if p.id else {})},
                f"pairs[{i}]",
            )
            for i, p in enumerate(body.pairs)
        ]
    except RecordError as err:
        raise store.AppError(422, str(err)) from None
    with request.app.state.db.session() as s:
        project = s.get(Project, caller.project_id)
        if "pairwise" not in project.kinds:
            raise store.AppError(
                409, f"project {project.name!r} collects {project.kinds}, a judge needs 'pairwise'"
            )
        ids = store.add_tasks(s, project, records, origin="judge", now=request.app.state.clock())
    return {"ids": ids}


@router.get("/answers")
def answers(ids: str, request: Request, caller: Caller = Depends(judge)) -> dict[str, Any]:
    """For each id: P(a > b) from the project's ``per_task`` votes (tie or both bad = 1/2), null until all are in."""
    try:
        wanted = [int(x) for x in ids.split(",") if x.strip()]
    except ValueError:
        raise store.AppError(422, "ids: give comma-separated task ids, e.g. ids=4,5,6") from None
    if len(wanted) > MAX_BATCH:
        raise store.AppError(422, f"ids: ask for at most {MAX_BATCH} at a time")
    with request.app.state.db.session() as s:
        project = s.get(Project, caller.project_id)
        mine = set(s.scalars(select(Task.id).where(Task.id.in_(wanted), Task.project_id == project.id)))
        unknown = sorted(set(wanted) - mine)
        if unknown:
            raise store.AppError(404, f"tasks {unknown[:10]} are not in this judge's project")
        votes: dict[int, list[float]] = defaultdict(list)
        for label in s.scalars(select(Label).where(Label.task_id.in_(wanted))):
            votes[label.task_id].append({"c0": 1.0, "c1": 0.0}.get(pair_category(label.value), 0.5))
        result = {
            str(i): statistics.fmean(votes[i]) if len(votes[i]) >= project.per_task else None for i in wanted
        }
    return {"answers": result}
