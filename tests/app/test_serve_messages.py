"""`alignlab app serve` as a person starts it: every start says where it listens and how to log in, and the
default database goes to the user data folder, not the working directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from alignlab.app.paths import data_dir
from tests.app.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def _serve_until_listening(env: dict[str, str], cwd: Path, port: int) -> str:
    """Start `serve` (no --db), wait for its "listening on" line, stop it; its whole output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "alignlab.cli.app", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("listening on"):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        lines.append(proc.communicate(timeout=20)[0])
    return "".join(lines)


def test_every_start_says_where_and_how_and_the_database_is_in_the_data_folder(tmp_path):
    port = free_port()
    data, work = tmp_path / "data", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "ALIGNLAB_DATA": str(data), "HOME": str(tmp_path)}
    env.pop("ALIGNLAB_APP_DB", None)
    base = f"http://127.0.0.1:{port}"

    first = _serve_until_listening(env, work, port)
    assert f"database: sqlite:///{data / 'feedback.db'}" in first
    assert f"admin page: {base}/admin#token=alt_" in first  # the first start makes an admin link
    assert f"annotators: {base}/ " in first and "project, name and password" in first
    assert f"listening on {base}" in first
    assert (data / "feedback.db").exists() and list(work.iterdir()) == []  # nothing in the working tree

    (work / "alignlab_feedback.db").write_bytes(b"")  # the old default: named, not used
    second = _serve_until_listening(env, work, port)
    assert "alignlab_feedback.db (the old default database) is not used" in second
    assert "#token=alt_" not in second  # no second admin token: the first one is still valid
    assert f"admin page: {base}/admin" in second and "alignlab app admin-token" in second
    assert f"listening on {base}" in second and f"annotators: {base}/ " in second


def test_data_folder_follows_the_platform_rules(monkeypatch, tmp_path):
    monkeypatch.delenv("ALIGNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert data_dir() == tmp_path / "xdg" / "alignlab"
        monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
        monkeypatch.setenv("HOME", str(tmp_path))
        assert data_dir() == tmp_path / ".local" / "share" / "alignlab"
    monkeypatch.setenv("ALIGNLAB_DATA", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"


def test_help_shows_the_whole_default_database_path_at_80_columns(tmp_path):
    """The --db cell of the options table cuts a long path short; the page's last line gives it whole."""
    data = tmp_path / "a-data-folder-with-a-long-name" / "alignlab"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "ALIGNLAB_DATA": str(data), "COLUMNS": "80"}
    env.pop("ALIGNLAB_APP_DB", None)
    for command in ("serve", "invite"):
        shown = subprocess.run(
            [sys.executable, "-m", "alignlab", "app", command, "--help"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout
        assert str(data / "feedback.db") in "".join(shown.split()), shown  # folded lines joined (no spaces)
