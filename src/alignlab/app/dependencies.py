"""The routes' request dependencies: the caller's bearer token, checked for a role.

Each dependency checks the token in its own short transaction and hands on plain ids; the routes open
their own transaction and commit it before answering, so an acknowledgement always means "stored".
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request

from alignlab.app import store


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(
            401, "send 'Authorization: Bearer <token>' (your invitation link holds the token)"
        )
    return value.strip()


@dataclass(frozen=True)
class Caller:
    token_id: int
    project_id: int | None = None
    annotator_id: int | None = None


def _caller(request: Request, plain: str, role: str) -> Caller:
    with request.app.state.db.session() as s:
        token = store.resolve_token(s, plain, request.app.state.clock())
        if token is None:
            raise HTTPException(
                401, "this token is unknown, revoked or expired; ask your admin for a new link"
            )
        if token.role != role:
            raise HTTPException(403, f"this route needs a {role} token")
        return Caller(token.id, token.project_id, token.annotator_id)


def admin(request: Request, plain: str = Depends(bearer)) -> Caller:
    return _caller(request, plain, "admin")


def annotator(request: Request, plain: str = Depends(bearer)) -> Caller:
    return _caller(request, plain, "annotator")


def judge(request: Request, plain: str = Depends(bearer)) -> Caller:
    return _caller(request, plain, "judge")
