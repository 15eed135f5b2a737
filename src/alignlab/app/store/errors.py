"""The one error the store raises: a request the service refuses, with the HTTP status to answer."""

from __future__ import annotations

from datetime import datetime, timezone


class AppError(Exception):
    """A request the service refuses; ``status`` is the HTTP status to answer with, ``retry_after`` the
    seconds a client should wait (sent as ``Retry-After``)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def utcnow() -> datetime:
    """Now as a naive UTC datetime (SQLite has no time zones)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
