"""The command line: default binding to 127.0.0.1, and create-project / upload / invite / export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from alignlab.app.db import Database
from alignlab.app.service import create_app
from alignlab.cli.app import app
from tests.app.conftest import pairs
from tests.app.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port``, read from the kernel's table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_serve_binds_only_to_loopback_by_default(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alignlab.cli.app",
            "serve",
            "--db",
            str(tmp_path / "f.db"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start")
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert f"http://127.0.0.1:{port}/admin#token=alt_" in out  # the first start prints an admin link


def test_cli_project_upload_invite_and_export(tmp_path):
    db_path = tmp_path / "cli.db"
    runner = CliRunner()
    r = runner.invoke(app, ["create-project", "cli", "--db", str(db_path), "--per-task", "1"])
    assert r.exit_code == 0, r.output
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("".join(json.dumps(x) + "\n" for x in pairs(2)))
    r = runner.invoke(app, ["upload", "cli", str(tasks), "--db", str(db_path)])
    assert r.exit_code == 0 and "added 2 tasks" in r.output
    r = runner.invoke(app, ["invite", "cli", "ann", "--db", str(db_path)])
    token = r.output.strip().split("#token=")[1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    r = runner.invoke(app, ["upload", "cli", str(bad), "--db", str(db_path)])
    assert r.exit_code == 1 and "completions" in r.output

    db = Database(str(db_path))
    client = TestClient(create_app(db))
    auth = {"Authorization": f"Bearer {token}"}
    while (task := client.get("/api/next", headers=auth).json()["task"]) is not None:
        choice = "first" if "GOOD" in task["completions"][0] else "second"
        body = {
            "assignment_id": task["assignment_id"],
            "client_key": f"cli-key-{task['task_id']}",
            "choice": choice,
        }
        assert client.post("/api/labels", json=body, headers=auth).status_code == 200
    db.dispose()

    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["export", "cli", "--db", str(db_path), "--aggregate", "all", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == ["q0:ann", "q1:ann"]
    assert all(row["ranking"] == [0, 1] and row["annotator"] == "ann" for row in rows)
    r = runner.invoke(app, ["export", "cli", "--db", str(db_path), "--format", "trl"])
    assert [json.loads(line)["chosen"] for line in r.stdout.splitlines()] == [
        "GOOD answer 0",
        "GOOD answer 1",
    ]
    r = runner.invoke(app, ["export", "nope", "--db", str(db_path)])
    assert r.exit_code == 1 and "no project named 'nope'" in r.output
