"""What an admin and an annotator see of the people and the work: the annotator list with labels and live
links, another link for an annotator, and progress counts that include the task in hand."""

from __future__ import annotations

from datetime import timedelta

from alignlab.app import store
from tests.app.conftest import pairs


def test_progress_counts_the_task_in_hand(env):
    p = env.project(name="count", per_task=1)
    env.upload(p["id"], pairs(20))
    alice = env.invite(p["id"], "alice")
    me = env.client.get("/api/me", headers=alice).json()
    assert (me["done"], me["available"]) == (0, 20)  # nothing served yet
    first = env.client.get("/api/next", headers=alice).json()
    assert (first["done"], first["available"]) == (0, 20)  # "0 done · 20 to go": the one on screen is to do
    assert env.label(alice, first["task"], choice="first").status_code == 200
    second = env.client.get("/api/next", headers=alice).json()
    assert (second["done"], second["available"]) == (1, 19)
    # Another annotator's finished tasks leave alice's count (per_task = 1: they are complete).
    bob = env.invite(p["id"], "bob")
    for _ in range(3):
        assert env.label(bob, env.next(bob), choice="second").status_code == 200
    assert env.client.get("/api/me", headers=alice).json()["available"] == 20 - 1 - 3


def test_annotator_list_labels_links_and_a_new_link(env):
    p = env.project(name="people")
    env.upload(p["id"], pairs(3))
    alice = env.invite(p["id"], "alice", password="long enough")
    env.invite(p["id"], "bob", expires_days=1)
    assert env.label(alice, env.next(alice), choice="first").status_code == 200
    url = f"/api/admin/projects/{p['id']}/annotators"
    listed = {a["name"]: a for a in env.client.get(url, headers=env.admin).json()}
    assert listed["alice"]["labels"] == 1 and listed["bob"]["labels"] == 0
    assert listed["alice"]["password"] and not listed["bob"]["password"]
    assert listed["bob"]["link_expires_at"] == (env.clock() + timedelta(days=1)).isoformat() + "Z"

    env.clock.advance(days=2)  # bob's only link has expired
    listed = {a["name"]: a for a in env.client.get(url, headers=env.admin).json()}
    assert listed["bob"]["link_expires_at"] is None
    r = env.client.post(f"{url}/{listed['bob']['id']}/link", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    assert r.json()["link"].startswith("http://127.0.0.1:8000/#token=alt_")
    bob = {"Authorization": f"Bearer {r.json()['token']}"}
    assert env.client.get("/api/me", headers=bob).json()["name"] == "bob"  # the new link works
    assert env.client.get(url, headers=env.admin).json()[1]["link_expires_at"] is not None

    # A disabled annotator gets no new link; an annotator of another project is not found.
    env.client.post(f"{url}/{listed['bob']['id']}/disable", headers=env.admin)
    assert env.client.post(f"{url}/{listed['bob']['id']}/link", json={}, headers=env.admin).status_code == 409
    other = env.project(name="other")
    wrong = f"/api/admin/projects/{other['id']}/annotators/{listed['alice']['id']}/link"
    assert env.client.post(wrong, json={}, headers=env.admin).status_code == 404


def test_invite_hashes_the_password_before_the_transaction(env, monkeypatch):
    """scrypt runs before the write transaction opens (it holds SQLite's write lock for its whole length)."""
    from contextlib import contextmanager

    from alignlab.app import security

    p = env.project(name="hash")
    open_transactions, seen_during_hash = [0], []
    real_session, real_hash = env.db.session, security.hash_password

    @contextmanager
    def counted_session():
        open_transactions[0] += 1
        try:
            with real_session() as s:
                yield s
        finally:
            open_transactions[0] -= 1

    def watched_hash(password):
        seen_during_hash.append(open_transactions[0])
        return real_hash(password)

    monkeypatch.setattr(env.db, "session", counted_session)
    monkeypatch.setattr(security, "hash_password", watched_hash)
    env.invite(p["id"], "carol", password="long enough")
    assert seen_during_hash == [0]  # hashed once, with no transaction open
    r = env.client.post(
        f"/api/admin/projects/{p['id']}/annotators",
        json={"name": "dan", "password": "short"},
        headers=env.admin,
    )
    assert r.status_code == 422 and "at least 8 characters" in r.text
    with env.db.session() as s:
        assert store.project_by_name(s, "hash").name == "hash"
