"""The FastAPI application: database, routes, security headers, static pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from alignlab.app import routes_admin, routes_annotate, routes_judge, store
from alignlab.app.db import Database
from alignlab.app.limits import DEFAULT_MAX_BODY, RequestLimits

STATIC = Path(__file__).parent / "static"
# No inline script or style may run, so even markup that slipped into the page could not execute.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def create_app(
    db: Database, clock: Callable[[], datetime] = store.utcnow, max_body: int = DEFAULT_MAX_BODY
) -> FastAPI:
    """The app on ``db``; request bodies over ``max_body`` bytes (uploads; 64 KiB elsewhere) get 413."""
    app = FastAPI(title="alignlab feedback", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.db = db
    app.state.clock = clock

    @app.exception_handler(store.AppError)
    def _app_error(_request: Request, err: store.AppError) -> JSONResponse:
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
        return JSONResponse({"detail": err.message}, status_code=err.status, headers=headers)

    @app.exception_handler(OverflowError)
    def _out_of_range(_request: Request, _err: OverflowError) -> JSONResponse:
        # An id or count beyond the database's 64-bit integers (e.g. /api/projects/99999999999999999999).
        return JSONResponse({"detail": "a number in the request is out of range (ids are below 2^63)"}, 422)

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

    app.add_middleware(RequestLimits, max_body=max_body)
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
