"""Database tables of the feedback app (SQLAlchemy 2 declarative models).

The schema is created and upgraded only by the alembic scripts in ``migrations/versions``; these models
must match the newest script (``tests/app/test_migrations.py`` checks that they do).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Which feedback each task asks for: subset of labels.KINDS, e.g. ["pairwise"] or ["rating", "critique"].
    kinds: Mapped[list[str]] = mapped_column(JSON)
    # Likert aspects: {"helpfulness": {"min": 1, "max": 5, "low": "useless", "high": "perfect"}}.
    aspects: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    span_labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    per_task: Mapped[int] = mapped_column(Integer, default=1)  # annotators per task
    lease_minutes: Mapped[int] = mapped_column(Integer, default=60)  # a served task is held this long
    instructions: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime())


class Annotator(Base):
    __tablename__ = "annotators"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_annotator_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime())


class Token(Base):
    """A bearer token; only its SHA-256 is stored. ``role`` is admin, annotator or judge."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    annotator_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotators.id", ondelete="CASCADE"), nullable=True
    )
    label: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime] = mapped_column(DateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime())


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_project_origin", "project_id", "origin"),
        Index("ix_tasks_project_complete", "project_id", "complete", "origin", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt: Mapped[Any] = mapped_column(JSON)  # str or chat messages, as in alignlab records
    completions: Mapped[list[str]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    origin: Mapped[str] = mapped_column(String(20), default="upload")  # upload | judge (added in 0002)
    # Set once per_task labels are in, so the queue query skips finished work (added in 0002).
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime())


class Assignment(Base):
    """Task shown to one annotator in one of the task's ``per_task`` slots, in a recorded random order.

    The unique (task, slot) pair is what keeps a task from being handed to more annotators than asked for,
    even when many annotators ask at once; an unlabelled slot whose lease ran out can be handed on.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("task_id", "slot", name="uq_assignment_slot"),
        UniqueConstraint("task_id", "annotator_id", name="uq_assignment_annotator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    order: Mapped[list[int]] = mapped_column(JSON)  # order[p] = completion index shown at position p
    served_at: Mapped[datetime] = mapped_column(DateTime())
    expires_at: Mapped[datetime] = mapped_column(DateTime())
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class Label(Base):
    """One annotator's answer on one task, in completion indices (not displayed positions).

    ``client_key`` is chosen by the client per submission so that a retried submission is recognised and
    answered with the first acknowledgement instead of being counted twice.
    """

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("task_id", "annotator_id", name="uq_label_task_annotator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    client_key: Mapped[str] = mapped_column(String(100))
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    order: Mapped[list[int]] = mapped_column(JSON)  # copy of the assignment's order, for bias statistics
    seconds: Mapped[float] = mapped_column(Float)  # from serving the task to the answer
    created_at: Mapped[datetime] = mapped_column(DateTime())


class LoginFailure(Base):
    """A failed password login, kept for the throttle window (see ``store.login``). ``key`` is
    ``name:<project>/<annotator>`` or ``client:<address>``."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(450))
    at: Mapped[datetime] = mapped_column(DateTime())
