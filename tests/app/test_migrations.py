"""Schema migrations: a database made by an older version upgrades with its data; models match the scripts."""

from __future__ import annotations

from datetime import datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text

from alignlab.app import store
from alignlab.app.db import Database, current_revision, downgrade, head_revision, make_engine, migrate
from alignlab.app.models import Base
from alignlab.app.service import create_app
from alignlab.data.records import Record


def test_a_version_0001_database_upgrades_and_keeps_its_data(db_url):
    engine = make_engine(db_url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    when = datetime(2030, 1, 1)
    with engine.begin() as c:  # rows as version 0001 wrote them: no tasks.origin column yet
        c.execute(
            text(
                "INSERT INTO projects (id, name, kinds, aspects, span_labels, per_task, lease_minutes, instructions, created_at)"
                " VALUES (1, 'old', '[\"pairwise\"]', '{}', '[]', 1, 60, 'be kind', :t)"
            ),
            {"t": when},
        )
        c.execute(
            text(
                "INSERT INTO tasks (id, project_id, external_id, prompt, completions, meta, source, created_at)"
                " VALUES (7, 1, 'legacy', '\"old prompt\"', '[\"yes\", \"no\"]', '{}', NULL, :t)"
            ),
            {"t": when},
        )
        # Task 8 was labelled under 0001 by annotator 101 (ids above what the sequences will hand out) (per_task is 1): after the upgrade it is complete.
        c.execute(
            text(
                "INSERT INTO tasks (id, project_id, external_id, prompt, completions, meta, source, created_at)"
                " VALUES (8, 1, 'done', '\"p\"', '[\"a\", \"b\"]', '{}', NULL, :t)"
            ),
            {"t": when},
        )
        c.execute(
            text(
                "INSERT INTO annotators (id, project_id, name, active, created_at) VALUES (101, 1, 'old-ann', :y, :t)"
            ),
            {"t": when, "y": True},
        )
        c.execute(
            text(
                'INSERT INTO assignments (id, task_id, annotator_id, slot, "order", served_at, expires_at, done)'
                " VALUES (101, 8, 101, 0, '[1, 0]', :t, :t, :y)"
            ),
            {"t": when, "y": True},
        )
        c.execute(
            text(
                'INSERT INTO labels (id, task_id, annotator_id, assignment_id, client_key, value, "order", seconds,'
                " created_at) VALUES (101, 8, 101, 101, 'old-key-1', :v, '[1, 0]', 3.5, :t)"
            ),
            {"t": when, "v": '{"pairwise": {"outcome": "win", "winner": 1}}'},
        )
    engine.dispose()

    db = Database(db_url)  # opening the database upgrades it
    assert current_revision(db.engine) == head_revision() == "0003"
    with db.session() as s:
        row = s.execute(text("SELECT origin, external_id, complete FROM tasks WHERE id = 7")).one()
        assert tuple(row) == ("upload", "legacy", False)
        assert s.execute(text("SELECT complete FROM tasks WHERE id = 8")).scalar() in (True, 1)
        project = store.project_by_name(s, "old")
        assert project.instructions == "be kind"
        who = store.create_annotator(s, project, "ann")
        token, _ = store.issue_token(s, "annotator", timedelta(days=1), project.id, who.id)
    client = TestClient(create_app(db))
    auth = {"Authorization": f"Bearer {token}"}
    task = client.get("/api/next", headers=auth).json()["task"]
    assert task["task_id"] == 7 and task["prompt"] == "old prompt"
    r = client.post(
        "/api/labels",
        json={"assignment_id": task["assignment_id"], "client_key": "k-00000001", "choice": "tie"},
        headers=auth,
    )
    assert r.status_code == 200
    with db.session() as s:
        from alignlab.app.export import export_rows

        rows = {r["id"]: r for r in export_rows(s, store.project_by_name(s, "old"), "records", "all")}
    assert rows["done:old-ann"]["ranking"] == [1, 0] and rows["legacy:ann"]["ranking"] == [0, 0]
    db.dispose()


def test_models_match_the_newest_migration(db_url):
    db = Database(db_url)
    with db.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    db.dispose()
    assert diff == []


def test_downgrade_then_upgrade_again(db_url):
    db = Database(db_url)
    with db.session() as s:
        project = store.create_project(s, "keep", ["pairwise"])
        store.add_tasks(s, project, [Record(prompt="p", completions=["a", "b"])])
        who = store.create_annotator(s, project, "ann")
        assignment = store.next_assignment(s, project, who, store.utcnow())
        store.submit_label(s, project, who, assignment.id, "key-12345678", {"choice": "tie"}, store.utcnow())
    downgrade(db.engine, "0001")
    assert current_revision(db.engine) == "0001"
    migrate(db.engine)
    assert current_revision(db.engine) == "0003"
    with db.session() as s:  # the round trip kept the label (no cascade through a copied table)
        assert s.execute(text("SELECT count(*) FROM labels")).scalar() == 1
    db.dispose()
