"""Where the feedback app keeps its database when ``--db`` is not given: a per-user data folder, never the
working tree (a database in a repository gets committed or lost with a checkout).

``$ALIGNLAB_DATA`` when set; otherwise the platform's user data folder: ``$XDG_DATA_HOME/alignlab`` or
``~/.local/share/alignlab`` on Linux, ``~/Library/Application Support/alignlab`` on macOS,
``%LOCALAPPDATA%\\alignlab`` on Windows (what ``platformdirs.user_data_dir("alignlab")`` gives, without the
dependency). Imports nothing heavy, so the CLI can show its defaults before SQLAlchemy loads.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA_ENV = "ALIGNLAB_DATA"
DB_FILE = "feedback.db"


def data_dir() -> Path:
    """The user data folder for alignlab (not created here)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "alignlab"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "alignlab"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share") / "alignlab"


def default_db_path() -> Path:
    """``data_dir()/feedback.db``."""
    return data_dir() / DB_FILE
