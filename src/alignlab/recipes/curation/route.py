"""``alignlab data route``: spend a human budget where it helps most and label the rest with an AI judge.

Every K = 2 record is first judged by the AI judge in both orders (symmetric p = P(first ≻ second));
the gain of a human label is the judge's uncertainty 1 − |2p − 1| (or a number the records carry,
``gain_from``), and :func:`alignlab.data.label.route.route` sends exactly ``budget`` records (the highest
gains) to people: a project is created in the feedback app through its HTTP API (``POST
/api/admin/projects``) and filled with those records (``POST /api/admin/projects/{id}/tasks``); the others
are written, AI-labelled, to ``ai_out`` with a provenance sidecar, and the records sent to people to
``human_out`` when given.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from alignlab.data.io import LoadReport, iter_located, write_records
from alignlab.data.label.route import route, uncertainty_gain
from alignlab.data.label.symmetric import symmetric_preference
from alignlab.data.provenance import write_sidecar
from alignlab.data.records import Record
from alignlab.judges.base import Judge
from alignlab.recipes.curation.common import SKIP_BAD_HINT, RunReport
from alignlab.recipes.curation.label import judge_both_orders, label_records


class AppError(RuntimeError):
    """The feedback app refused a request; the message gives its status and answer."""


def post_to_app(
    url: str, token: str, project: str, records: list[Record], per_task: int = 1, client: Any = None
) -> dict[str, Any]:
    """Create a pairwise project ``project`` and upload ``records`` (their feedback removed) as its tasks."""
    import httpx

    http = client or httpx.Client(base_url=url.rstrip("/"), timeout=60, trust_env=False)
    headers = {"Authorization": f"Bearer {token}"}

    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = http.post(path, json=body, headers=headers)
        except httpx.HTTPError as err:
            raise AppError(f"cannot reach the feedback app at {url}: {err}") from None
        if response.status_code >= 400:
            raise AppError(
                f"the feedback app refused POST {path}: {response.status_code} {response.text[:300]}"
            )
        return response.json()

    created = call("/api/admin/projects", {"name": project, "kinds": ["pairwise"], "per_task": per_task})
    tasks = [
        dataclasses.replace(r, ranking=None, labels=None, scores=None, extras={}).to_dict() for r in records
    ]
    added = call(f"/api/admin/projects/{created['id']}/tasks", {"records": tasks}) if tasks else {"added": 0}
    return {"project_id": created["id"], "project": project, "added": added["added"]}


def route_file(
    source: str,
    budget: int,
    judge: Judge,
    judge_spec: Any,
    ai_out: str | os.PathLike,
    app_url: str | None,
    token: str | None,
    project: str,
    human_out: str | os.PathLike | None = None,
    gain_from: str | None = None,
    per_task: int = 1,
    format: str = "auto",
    split: str | None = None,
    skip_bad: bool = False,
    client: Any = None,
    performance_model: str | None = None,
    feature_meta: tuple[str, ...] = (),
) -> RunReport:
    """``performance_model``: a HyPER performance prediction model (``PerformanceModel.save``); the gain of
    a record is then Σ_f w_f φ_f(record) on its features (``feature_meta``: the meta tags it was fitted
    with), :mod:`alignlab.data.label.hyper`."""
    if performance_model and gain_from:
        raise ValueError("give --performance-model or --gain-from, not both")
    ppm = None
    if performance_model:
        from alignlab.data.label.hyper import PerformanceModel

        ppm = PerformanceModel.load(performance_model)
    report = RunReport("route", LoadReport(source))
    records: list[Record] = []
    on_error = "skip" if skip_bad else "raise"
    for where, record in iter_located(source, format, split, on_error, report.load, skip_hint=SKIP_BAD_HINT):
        report.records_in += 1
        if record.k != 2:
            report.reject(where, f"routing compares pairs; this record has K = {record.k}")
        elif gain_from is not None and not isinstance(record.extras.get(gain_from), (int, float)):
            report.reject(where, f"no number extras.{gain_from} (--gain-from)")
        else:
            records.append(record)
    p_ab, p_ba = judge_both_orders(judge, records) if records else ([], [])
    if ppm is not None:
        from alignlab.data.label.hyper import instance_features

        gain = ppm.gain(instance_features(records, feature_meta)) if records else []
    elif gain_from:
        gain = [r.extras[gain_from] for r in records]
    else:
        gain = uncertainty_gain(symmetric_preference(p_ab, p_ba))
    plan = route(gain, budget)
    human = [records[i] for i in plan.human]
    ai = label_records(judge, [records[i] for i in plan.ai], "pairs").records if plan.ai else []
    sent = {"added": 0}
    if human:
        if not app_url or not token:
            raise ValueError(
                "records routed to people need --app URL and an admin token (--token or ALIGNLAB_APP_TOKEN)"
            )
        sent = post_to_app(app_url, token, project, human, per_task, client)
    write_records(ai, ai_out)
    if human_out is not None:
        write_records(human, human_out)
    report.records_out = len(ai) + len(human)
    report.extra.update(
        {
            "to_people": sent["added"],
            "to_ai": len(ai),
            "budget": budget,
            **{k: v for k, v in sent.items() if k != "added"},
        }
    )
    parameters = {
        "budget": budget,
        "gain": gain_from or ("performance_model" if ppm is not None else "uncertainty"),
        "performance_model": performance_model,
        "feature_meta": list(feature_meta),
        "project": project,
        "per_task": per_task,
        "app": app_url,
    }
    write_sidecar(
        ai_out,
        "alignlab data route",
        "hybrid_preference_routing",
        parameters,
        [source],
        {"ai_judge": str(judge_spec)},
        report.counts(),
    )
    if human_out is not None:
        write_sidecar(
            human_out,
            "alignlab data route",
            "hybrid_preference_routing (sent to people)",
            parameters,
            [source],
            {"ai_judge": str(judge_spec)},
            report.counts(),
        )
    return report
