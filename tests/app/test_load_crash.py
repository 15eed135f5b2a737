"""Load and crash: 50 simulated annotators submit 5,000 votes over loopback while the server is killed
with SIGKILL mid-way and restarted; no acknowledged vote is lost and none is counted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from alignlab.app import store
from alignlab.app.db import Database
from alignlab.app.models import Annotator, Label, Task
from alignlab.data.records import Record
from tests.app.live_server import free_port

# About 110 s per database on a shared 2-core machine (client threads and server share the CPUs).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ANNOTATORS, TASKS, PER_TASK = 50, 2500, 2  # 2,500 tasks x 2 votes = 5,000 votes


class Server:
    def __init__(self, db_url: str):
        self.db_url, self.port = db_url, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cmd = [
            sys.executable,
            "-m",
            "alignlab.cli.app",
            "serve",
            "--db",
            self.db_url,
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen([*cmd, "--no-admin-link"], env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def _annotate(url: str, token: str, acked: dict, errors: list) -> None:
    """One annotator: take a task, answer, retry the same submission (same key) until acknowledged."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30, trust_env=False) as client:
        while True:
            try:
                r = client.get("/api/next")
            except httpx.HTTPError:
                time.sleep(0.1)  # the server is down: wait for it to come back
                continue
            task = r.json()["task"]
            if task is None:
                return
            # Vote for the completion whose text starts with GOOD on even task ids, BAD on odd ones.
            want = "GOOD" if task["task_id"] % 2 == 0 else "BAD"
            choice = "first" if task["completions"][0].startswith(want) else "second"
            body = {"assignment_id": task["assignment_id"], "client_key": uuid.uuid4().hex, "choice": choice}
            while True:
                try:
                    r = client.post("/api/labels", json=body)
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                acked[(token, task["task_id"])] = r.json()["label_id"]
                break


def test_50_annotators_5000_votes_with_a_sigkill(db_url):
    db = Database(db_url)
    tokens = {}
    with db.session() as s:
        project = store.create_project(s, "load", ["pairwise"], per_task=PER_TASK)
        records = [Record(prompt=f"p{i}", completions=[f"GOOD {i}", f"BAD {i}"]) for i in range(TASKS)]
        store.add_tasks(s, project, records)
        for n in range(ANNOTATORS):
            who = store.create_annotator(s, project, f"a{n}")
            token, _ = store.issue_token(s, "annotator", timedelta(days=1), project.id, who.id)
            tokens[token] = who.id
    server = Server(db_url)
    server.start()
    acked: dict = {}
    errors: list = []
    threads = [threading.Thread(target=_annotate, args=(server.url, t, acked, errors)) for t in tokens]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while len(acked) < 2000:  # kill it mid-way, with requests in flight
        time.sleep(0.01)
    server.kill()
    killed_at = len(acked)
    time.sleep(0.5)
    server.start()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.monotonic() - started
    server.kill()
    print(f"\n{len(acked)} votes acknowledged in {elapsed:.1f} s (server killed after {killed_at})")

    assert errors == []
    assert 2000 <= killed_at < TASKS * PER_TASK
    with db.session() as s:
        rows = s.execute(select(Label.id, Label.annotator_id, Label.task_id, Label.value)).all()
        assert s.scalar(select(func.count(Task.id)).where(~Task.complete)) == 0
        names = dict(s.execute(select(Annotator.id, Annotator.name)).all())
    db.dispose()
    assert len(rows) == TASKS * PER_TASK == len(acked)  # every vote once: none lost, none doubled
    stored = {(annotator, task): (label_id, value) for label_id, annotator, task, value in rows}
    per_task: dict[int, int] = {}
    for (token, task_id), label_id in acked.items():
        got_id, value = stored[(tokens[token], task_id)]
        assert got_id == label_id  # the acknowledgement names the stored vote
        per_task[task_id] = per_task.get(task_id, 0) + 1
        # Task ids count from 1 in a fresh database: even ids voted GOOD (completion 0), odd ids BAD.
        assert value["pairwise"]["winner"] == (0 if task_id % 2 == 0 else 1)
    assert set(per_task.values()) == {PER_TASK} and len(per_task) == TASKS
    assert len(names) == ANNOTATORS
