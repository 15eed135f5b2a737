"""Limits applied to every request before any route sees it: body size, and standard JSON only.

:class:`RequestLimits` is plain ASGI middleware in front of the whole application. It reads the body up to
the limit (refusing with 413 as soon as ``Content-Length`` or the bytes received pass it, so a 100 MB POST
costs at most the limit in memory) and, for JSON bodies, parses them by the rules of
:mod:`alignlab.data.strict_json` (no duplicate keys, NaN/Infinity, lone surrogates, invalid UTF-8 or deep
nesting), answering 400 with the reason. Routes then parse the same bytes with FastAPI as usual, knowing
they are standard JSON, so nothing non-standard is ever stored or exported.
"""

from __future__ import annotations

import json
from typing import Any

from alignlab.data.strict_json import JSONProblem, loads

DEFAULT_MAX_BODY = 16 * 1024 * 1024  # a task upload of a few thousand records
SMALL_MAX_BODY = 64 * 1024  # routes that take a few fields (log in, labels, tokens)
LARGE_BODY_PATHS = ("/tasks",)  # upload routes: /api/projects/{id}/tasks and /tasks.jsonl


class RequestLimits:
    """ASGI middleware: 413 for bodies over the limit, 400 for JSON that is not standard JSON."""

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY, small_max_body: int = SMALL_MAX_BODY):
        self.app, self.max_body, self.small_max_body = app, max_body, min(small_max_body, max_body)

    def limit_for(self, path: str) -> int:
        large = any(marker in path for marker in LARGE_BODY_PATHS)
        return self.max_body if large else self.small_max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, _too_large(limit))
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nothing to answer
            body += message.get("body", b"")
            if len(body) > limit:
                await _answer(send, 413, _too_large(limit))
                return
            if not message.get("more_body", False):
                break
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if body and "json" in content_type and "ndjson" not in content_type:
            problem = _json_problem(bytes(body))
            if problem:
                await _answer(send, 400, problem)
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than {limit} bytes; split an upload into smaller files "
        "(the server's limit is set with `alignlab app serve --max-body-mb`)"
    )


def _json_problem(body: bytes) -> str | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"the body is not valid UTF-8 (byte {err.start}); send JSON as UTF-8"
    try:
        loads(text)
    except JSONProblem as err:
        return f"the body is not standard JSON: {err}" + (f" ({err.fix})" if err.fix else "")
    return None


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: only a disconnect can come

    return replay


async def _answer(send: Any, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
