"""`alignlab app serve` trusts X-Forwarded-For only from the proxies named by --forwarded-allow-ips, so a
client reaching the server directly cannot pick its own address to dodge the per-address login limit;
Ctrl-C stops the server with status 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from alignlab.app.store import MAX_FAILURES_PER_CLIENT
from tests.app.live_server import free_port

ALIGNLAB = str(Path(sys.executable).with_name("alignlab"))


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'app.db'}"
    command = [ALIGNLAB, "app", "serve", "--db", db, "--port", str(port), "--no-admin-link", *extra]
    proc = subprocess.Popen(
        command, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _spoofed_failures(url: str) -> list[int]:
    """One more failed login than the per-address limit, each claiming another address and name."""
    codes = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(MAX_FAILURES_PER_CLIENT + 1):
            body = {"project": "p", "name": f"n{i}", "password": "wrong"}
            codes.append(
                client.post("/api/login", json=body, headers={"X-Forwarded-For": f"10.0.{i}.1"}).status_code
            )
    return codes


def test_forwarded_for_is_ignored_unless_the_proxy_is_named(tmp_path):
    proc, url = _serve(tmp_path)
    try:
        codes = _spoofed_failures(url)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert codes[:-1] == [401] * MAX_FAILURES_PER_CLIENT and codes[-1] == 429  # one address, limited
    assert proc.returncode == 130 and "Traceback" not in err, err[-500:]

    proc, url = _serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1")
    try:
        codes = _spoofed_failures(url)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert codes == [401] * (MAX_FAILURES_PER_CLIENT + 1)  # behind a named proxy, each address counts alone
