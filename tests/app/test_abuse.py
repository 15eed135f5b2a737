"""The app under abuse, over real HTTP on 127.0.0.1: body-size limit before parsing, standard JSON only,
byte-exact uploads, bounds on ids, spans and labels, and a fuzz of every route's schema (never a 500)."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import httpx
import pytest

from alignlab.app import store
from alignlab.app.db import Database
from alignlab.app.labels import MAX_SPANS
from alignlab.app.limits import SMALL_MAX_BODY
from tests.app.live_server import LiveServer


@pytest.fixture
def live(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'feedback.db'}")
    with db.session() as s:
        admin, _ = store.issue_token(s, "admin", timedelta(days=1))
    with LiveServer(db) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {admin}"
        yield server, client
    db.dispose()


def _project(client: httpx.Client, **spec) -> int:
    spec.setdefault("kinds", ["pairwise"])
    spec.setdefault("name", "p")
    r = client.post("/api/admin/projects", json=spec)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _annotator(client: httpx.Client, project: int, name: str = "ann", **extra) -> dict:
    r = client.post(f"/api/admin/projects/{project}/annotators", json={"name": name, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


TASKS = [{"prompt": f"q{i}", "completions": [f"good {i}", f"bad {i}"], "id": f"t{i}"} for i in range(3)]


def test_body_over_the_limit_is_413_before_it_is_read(live):
    server, client = live
    big = b'{"project": "p", "name": "n", "password": "' + b"x" * (SMALL_MAX_BODY + 10) + b'"}'
    r = client.post("/api/login", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    # A client that announces 100 MB is answered at once, without the server waiting for the bytes.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n{"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    # Chunked bodies without a length are counted as they arrive.
    chunks = (b"x" * 8192 for _ in range(20))
    r = client.post("/api/login", content=chunks, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"project": "p", "name": "n", "password": "a", "password": "b"}', "appears twice"),
        (b'{"project": "p", "name": "n", "password": NaN}', "NaN is not a JSON number"),
        (b'{"project": "p", "name": "n", "password": "\\ud800"}', "surrogate"),
        (b'{"project": "p", "name": "\xff", "password": "x"}', "not valid UTF-8"),
        (b"[" * 3000 + b"]" * 3000, "nested"),
    ],
)
def test_non_standard_json_is_400_with_the_reason(live, body, needle):
    _, client = live
    r = client.post("/api/login", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and needle in r.json()["detail"], r.text


def test_upload_is_byte_exact(live):
    _, client = live
    project = _project(client)
    strings = {"prompt": "line\u2028sep\u0085nel", "completions": ["a\u2029b", "c"], "id": "u"}
    body = (json.dumps(strings, ensure_ascii=False) + "\n").encode("utf-8")
    r = client.post(f"/api/admin/projects/{project}/tasks.jsonl", content=body)
    assert r.status_code == 200, r.text
    bad = body + b'{"prompt": "caf\xe9", "completions": ["x", "y"]}\n'
    r = client.post(f"/api/admin/projects/{project}/tasks.jsonl", content=bad)
    assert r.status_code == 422 and "upload:2" in r.json()["detail"] and "UTF-8" in r.json()["detail"]
    who = _annotator(client, project)
    task = client.get("/api/next", headers=who).json()["task"]
    assert task["prompt"] == strings["prompt"]  # stored and served exactly as sent
    nan_meta = b'{"prompt": "p", "completions": ["x", "y"], "meta": {"w": NaN}}\n'
    r = client.post(f"/api/admin/projects/{project}/tasks.jsonl", content=nan_meta)
    assert r.status_code == 422 and "NaN" in r.json()["detail"]


def test_bounds_on_ids_spans_and_labels(live):
    _, client = live
    project = _project(client, kinds=["spans"], span_labels=["wrong"])
    client.post(f"/api/admin/projects/{project}/tasks", json={"records": TASKS})
    who = _annotator(client, project)
    task = client.get("/api/next", headers=who).json()["task"]

    def label(**body):
        body = {"assignment_id": task["assignment_id"], "client_key": "key-00000001", **body}
        return client.post("/api/labels", json=body, headers=who)

    assert label(assignment_id=2**63).status_code == 422
    assert label(assignment_id=-5).status_code == 422
    assert client.get(f"/api/admin/projects/{2**70}/stats").status_code == 422
    assert client.get(f"/api/admin/projects/{2**63}/stats").status_code in (404, 422)
    too_many = [[{"start": 0, "end": 1, "label": "wrong"}] * (MAX_SPANS + 1), []]
    r = label(spans=too_many)
    assert r.status_code == 422 and f"at most {MAX_SPANS} spans" in r.json()["detail"]
    r = label(spans=[[{"start": 0, "end": 1, "label": {"a": 1}}], []])
    assert r.status_code == 422 and "a label is text" in r.json()["detail"]
    ok = label(spans=[[{"start": 0, "end": 1, "label": "wrong"}], []])
    assert ok.status_code == 200, ok.text


def test_mixed_type_ranking_order_is_422(live):
    _, client = live
    project = _project(client, kinds=["ranking"], name="r")
    client.post(f"/api/admin/projects/{project}/tasks", json={"records": TASKS})
    who = _annotator(client, project)
    task = client.get("/api/next", headers=who).json()["task"]
    for order in ([0, "1"], [None, 1], [[0], 1], [0.0, 1]):
        body = {"assignment_id": task["assignment_id"], "client_key": "key-00000002", "order": order}
        r = client.post("/api/labels", json=body, headers=who)
        assert r.status_code == 422, (order, r.text)


# ------------------------------------------------------------------ fuzz of every route's schema
BAD_VALUES = [
    None,
    True,
    -1,
    0,
    2**63,
    2**70,
    1.5,
    "",
    "x" * 300,
    [],
    {},
    [1, "a"],
    {"a": {"b": []}},
    "\u0000",
]
BAD_BODIES = [[], "text", 3, {}, {"unknown": 1}, None]
BAD_PATH_IDS = ["-1", "0", str(2**63), str(2**70), "x", "1.5"]


def _schema_fields(spec: dict, operation: dict) -> dict:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if not body:
        return {}
    if "$ref" in body:
        body = spec["components"]["schemas"][body["$ref"].split("/")[-1]]
    return body.get("properties", {})


def test_fuzz_every_route_never_answers_500(live):
    _, client = live
    project = _project(client, kinds=["pairwise"], name="fuzz")
    client.post(f"/api/admin/projects/{project}/tasks", json={"records": TASKS})
    annotator = _annotator(client, project, password="pw-123456")
    judge = {
        "Authorization": f"Bearer {client.post(f'/api/admin/projects/{project}/judge-token', json={}).json()['token']}"
    }
    spec = client.get("/api/openapi.json").json()
    sent = 0
    failures = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method not in ("post", "put", "patch", "delete", "get"):
                continue
            auth = (
                {}
                if path == "/api/login"
                else annotator
                if not path.startswith(("/api/admin", "/api/judge")) and path not in ("/api/health",)
                else judge
                if path.startswith("/api/judge")
                else dict(client.headers)
            )
            concrete = path.replace("{project_id}", str(project)).replace("{annotator_id}", "1")
            fields = _schema_fields(spec, operation)
            bodies = list(BAD_BODIES)
            for name in fields:
                for value in BAD_VALUES:
                    base = {f: "x" for f in fields}
                    base[name] = value
                    bodies.append(base)
            urls = [concrete] + [
                path.replace("{project_id}", bad).replace("{annotator_id}", bad)
                for bad in BAD_PATH_IDS
                if "{" in path
            ]
            for url in urls:
                # Every bad body on the real path; the bad path ids with one body each.
                tried = [None] if method == "get" else bodies if url == concrete else [{}]
                for body in tried:
                    headers = {k: v for k, v in auth.items() if k.lower() == "authorization"}
                    r = client.request(method.upper(), url, json=body, headers=headers)
                    sent += 1
                    if r.status_code >= 500:
                        failures.append((method, url, body, r.status_code, r.text[:200]))
    assert sent > 250
    assert not failures, failures[:5]
