"""The FastAPI application: database, authentication, security headers, static pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from alignlab.app import store
from alignlab.app.db import Database

STATIC = Path(__file__).parent / "static"
# No inline script or style may run, so even markup that slipped into the page could not execute.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def create_app(db: Database, clock: Callable[[], datetime] = store.utcnow) -> FastAPI:
    from alignlab.app import routes_admin, routes_annotate, routes_judge

    app = FastAPI(title="alignlab feedback", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.db = db
    app.state.clock = clock

    @app.exception_handler(store.AppError)
    def _app_error(_request: Request, err: store.AppError) -> JSONResponse:
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
        return JSONResponse({"detail": err.message}, status_code=err.status, headers=headers)

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.include_router(routes_annotate.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_judge.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def _annotate_page() -> FileResponse:
        return FileResponse(STATIC / "annotate.html")

    @app.get("/admin", include_in_schema=False)
    def _admin_page() -> FileResponse:
        return FileResponse(STATIC / "admin.html")

    @app.get("/api/health")
    def _health() -> dict:
        return {"ok": True}

    return app


# ------------------------------------------------------------------------------- request dependencies
def now(request: Request) -> datetime:
    return request.app.state.clock()


def database(request: Request) -> Database:
    return request.app.state.db


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(
            401, "send 'Authorization: Bearer <token>' (your invitation link holds the token)"
        )
    return value.strip()


# Each dependency checks the token in its own short transaction and hands on plain ids; the routes open
# their own transaction and commit it before answering, so an acknowledgement always means "stored".
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
