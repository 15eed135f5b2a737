"""Security: project isolation, admin-only routes, escaping, SQL injection, token expiry, stored secrets."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select, text

from alignlab.app.models import Annotator, Label, Project, Task, Token
from tests.app.conftest import pairs

STATIC = Path(__file__).resolve().parents[2] / "src" / "alignlab" / "app" / "static"


def _two_projects(env):
    p1, p2 = env.project(name="one"), env.project(name="two")
    env.upload(p1["id"], pairs(2, "one-"))
    env.upload(p2["id"], pairs(2, "two-"))
    return p1, p2, env.invite(p1["id"], "a1"), env.invite(p2["id"], "a2")


def test_an_annotator_sees_and_writes_only_their_own_project(env):
    p1, p2, a1, a2 = _two_projects(env)
    theirs = env.next(a2)
    assert env.label(a2, theirs, choice="first").status_code == 200
    mine = []
    while (task := env.next(a1)) is not None:
        assert task["prompt"].startswith("one-")  # never a task of project two
        mine.append(task)
        assert env.label(a1, task, choice="second").status_code == 200
    assert len(mine) == 2
    # Writing to project two's assignment (someone else's) is refused and changes nothing.
    other = env.next(a2)
    r = env.label(a1, other, key="steal-000001", choice="first")
    assert r.status_code == 404
    assert len(env.export(p2["id"], aggregate="all")) == 1
    # Nothing an annotator can fetch mentions another annotator's labels.
    for path in ("/api/me", "/api/next"):
        body = env.client.get(path, headers=a1).text
        assert "a2" not in body and "two-" not in body and "ranking" not in body


def test_annotator_and_judge_tokens_cannot_reach_admin_routes(env):
    p1, _, a1, _ = _two_projects(env)
    judge = env.client.post(f"/api/admin/projects/{p1['id']}/judge-token", json={}, headers=env.admin).json()[
        "token"
    ]
    for who in (a1, {"Authorization": f"Bearer {judge}"}):
        for method, path in [
            ("GET", "/api/admin/projects"),
            ("POST", "/api/admin/projects"),
            ("GET", f"/api/admin/projects/{p1['id']}/export"),
            ("GET", f"/api/admin/projects/{p1['id']}/stats"),
            ("POST", f"/api/admin/projects/{p1['id']}/annotators"),
            ("POST", f"/api/admin/projects/{p1['id']}/tasks"),
        ]:
            assert env.client.request(method, path, headers=who, json={}).status_code == 403, path
    assert env.client.get("/api/next", headers={"Authorization": f"Bearer {judge}"}).status_code == 403
    assert env.client.post("/api/judge/pairs", headers=a1, json={"pairs": []}).status_code == 403
    for bad in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
        assert env.client.get("/api/admin/projects", headers=bad).status_code == 401
        assert env.client.get("/api/next", headers=bad).status_code == 401


def test_tokens_expire_and_disabling_an_annotator_revokes_them(env):
    p = env.project(name="exp")
    env.upload(p["id"], pairs(1))
    short = env.client.post(
        f"/api/admin/projects/{p['id']}/annotators", json={"name": "s", "expires_days": 1}, headers=env.admin
    )
    s_auth = {"Authorization": f"Bearer {short.json()['token']}"}
    long_auth = env.invite(p["id"], "l", expires_days=30)
    assert env.client.get("/api/me", headers=s_auth).status_code == 200
    env.clock.advance(days=1, seconds=1)
    assert env.client.get("/api/me", headers=s_auth).status_code == 401
    assert env.client.get("/api/me", headers=long_auth).status_code == 200
    who = env.client.get(f"/api/admin/projects/{p['id']}/annotators", headers=env.admin).json()
    l_id = next(a["id"] for a in who if a["name"] == "l")
    env.client.post(f"/api/admin/projects/{p['id']}/annotators/{l_id}/disable", headers=env.admin)
    assert env.client.get("/api/me", headers=long_auth).status_code == 401
    env.clock.advance(days=30)  # the admin token (30 days) has expired too
    assert env.client.get("/api/admin/projects", headers=env.admin).status_code == 401


def test_secrets_are_stored_hashed(env):
    p = env.project(name="secrets")
    r = env.client.post(
        f"/api/admin/projects/{p['id']}/annotators",
        json={"name": "x", "password": "hunter2hunter2"},
        headers=env.admin,
    )
    plain = r.json()["token"]
    with env.db.session() as s:
        hashes = list(s.scalars(select(Token.token_hash)))
        stored_password = s.scalar(select(Annotator.password_hash))
    assert plain not in hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    import hashlib

    assert hashlib.sha256(plain.encode()).hexdigest() in hashes
    assert "hunter2" not in stored_password and stored_password.startswith("scrypt$")


def test_sql_injection_through_every_field_is_stored_as_text(env):
    evil = "x'); DROP TABLE labels; --"
    p = env.project(name=evil, instructions=evil, kinds=["pairwise", "critique"])
    env.upload(p["id"], [{"prompt": evil, "completions": [evil, evil + " 2"], "id": evil}])
    who = env.invite(p["id"], evil, password="' OR '1'='1' --")
    task = env.next(who)
    r = env.label(who, task, key=evil[:20] + "-key", choice="first", critique=[evil, None])
    assert r.status_code == 200
    assert (
        env.client.post(
            "/api/login", json={"project": evil, "name": evil, "password": "' OR 1=1 --"}
        ).status_code
        == 401
    )
    assert (
        env.client.post(
            "/api/login", json={"project": "' OR '1'='1", "name": "' OR '1'='1", "password": "x' OR 'x'='x"}
        ).status_code
        == 401
    )
    for params in ({"format": "records; DROP TABLE tasks"}, {"aggregate": "all' --"}):
        assert (
            env.client.get(
                f"/api/admin/projects/{p['id']}/export", params=params, headers=env.admin
            ).status_code
            == 422
        )
    assert env.client.get("/api/admin/projects/1 OR 1=1/stats", headers=env.admin).status_code == 422
    (record,) = env.export(p["id"], aggregate="all")
    assert record["prompt"] == evil and record["annotator"] == evil and evil in record["critique"]
    with env.db.session() as s:
        assert s.scalar(select(Project.name)) == evil
        assert s.scalar(select(func.count(Label.id))) == 1 and s.scalar(select(func.count(Task.id))) == 1
        assert s.execute(text("SELECT count(*) FROM labels")).scalar() == 1  # the table is still there


def test_pages_never_put_server_text_into_html_and_forbid_inline_script(env):
    for js in STATIC.glob("*.js"):
        source = js.read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in source, f"{js.name} uses {sink}"
    for html in STATIC.glob("*.html"):
        assert not re.search(r"<script(?![^>]*\bsrc=)", html.read_text()), f"{html.name} has an inline script"
    r = env.client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    p = env.project(name="xss")
    env.upload(p["id"], [{"prompt": "<script>alert(1)</script>", "completions": ["<b>a</b>", "b"]}])
    r = env.client.get("/api/next", headers=env.invite(p["id"], "v"))
    assert (
        r.headers["content-type"] == "application/json"
        and "<script>alert(1)</script>" in r.json()["task"]["prompt"]
    )


def _login(env, name, password, project="guard"):
    return env.client.post("/api/login", json={"project": project, "name": name, "password": password})


def test_password_guessing_is_throttled_per_name_and_the_window_passes(env):
    from alignlab.app.store import LOGIN_WINDOW, MAX_FAILURES_PER_NAME

    p = env.project(name="guard")
    env.invite(p["id"], "dana", password="right password")
    env.invite(p["id"], "eve", password="eves password")
    for _ in range(MAX_FAILURES_PER_NAME):
        assert _login(env, "dana", "wrong guess").status_code == 401
    refused = _login(env, "dana", "right password")  # even the right password waits: no oracle for guesses
    assert refused.status_code == 429 and "try again in 15 minute(s)" in refused.json()["detail"]
    assert (
        int(refused.headers["Retry-After"]) == LOGIN_WINDOW.total_seconds()
    )  # the first failure leaves then
    assert _login(env, "eve", "eves password").status_code == 200  # another name is not locked
    env.clock.advance(seconds=LOGIN_WINDOW.total_seconds() + 1)  # the failures leave the window
    assert _login(env, "dana", "right password").status_code == 200
    # A success clears the name's failures: four more wrong guesses still leave room for the fifth.
    for _ in range(MAX_FAILURES_PER_NAME - 1):
        assert _login(env, "dana", "wrong guess").status_code == 401
    assert _login(env, "dana", "right password").status_code == 200


def test_one_address_guessing_many_names_is_throttled(env):
    from alignlab.app.store import MAX_FAILURES_PER_CLIENT

    env.project(name="guard")
    for i in range(MAX_FAILURES_PER_CLIENT):  # names that do not exist count too
        assert _login(env, f"nobody-{i}", "wrong guess").status_code == 401
    r = _login(env, "someone-new", "wrong guess")
    assert r.status_code == 429 and "from this address" in r.json()["detail"]
    with env.db.session() as s:  # what was stored: one row per key per failure, no passwords
        rows = s.execute(text("SELECT key FROM login_failures")).scalars().all()
    assert len(rows) == 2 * MAX_FAILURES_PER_CLIENT and not any("wrong" in k for k in rows)
