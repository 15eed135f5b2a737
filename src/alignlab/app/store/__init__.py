"""Operations on the feedback database, one module per job:

- ``projects``: projects and their tasks;
- ``access``: annotators, bearer tokens and password logins;
- ``assignments``: handing out tasks to annotators under a lease;
- ``submissions``: storing labels and completing tasks;
- ``errors``: ``AppError`` (a refused request with its HTTP status) and the clock.

Each function works inside a caller's session (one transaction); the routes and the CLI both call these.
Times are naive UTC datetimes (SQLite has no time zones), passed in as ``now`` so tests can move the clock.
Callers use them through this package (``store.create_project(...)``).
"""

from __future__ import annotations

from alignlab.app.store.access import (
    LOGIN_WINDOW,
    MAX_FAILURES_PER_CLIENT,
    MAX_FAILURES_PER_NAME,
    ROLES,
    create_annotator,
    hash_new_password,
    issue_token,
    login,
    resolve_token,
)
from alignlab.app.store.assignments import count_available, next_assignment, task_view
from alignlab.app.store.errors import AppError, utcnow
from alignlab.app.store.projects import (
    add_tasks,
    create_project,
    project_by_id,
    project_by_name,
    project_dict,
)
from alignlab.app.store.submissions import find_label, submit_label

__all__ = [
    "LOGIN_WINDOW",
    "MAX_FAILURES_PER_CLIENT",
    "MAX_FAILURES_PER_NAME",
    "ROLES",
    "AppError",
    "add_tasks",
    "count_available",
    "create_annotator",
    "create_project",
    "find_label",
    "hash_new_password",
    "issue_token",
    "login",
    "next_assignment",
    "project_by_id",
    "project_by_name",
    "project_dict",
    "resolve_token",
    "submit_label",
    "task_view",
    "utcnow",
]
