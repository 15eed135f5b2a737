"""The judges registry: name → class, with the paper and a one-line summary (``alignlab judges``).

Losses that train reward models are objectives (``alignlab objectives --family reward_model``); the
entries here are the things that *use* models (or rules) to score completions. Every module of this
package registers its judges when the registry is first read (nothing lists them by hand). A judge that
can be built from a config declares a pydantic ``Settings`` class and a classmethod
``from_settings(settings, where, context)`` (see :mod:`alignlab.judges.build`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class JudgeConfigError(ValueError):
    """A user named an unknown judge or gave a judge spec a bad key or value; the message says the fix."""


@dataclass(frozen=True)
class JudgeSpec:
    name: str
    cls: type
    paper: str
    kind: str  # "scores" or "preferences"

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.cls) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def buildable(self) -> bool:
        """True when ``build_judge`` can make this judge from a config spec."""
        return hasattr(self.cls, "Settings") and hasattr(self.cls, "from_settings")

    @property
    def settings(self) -> dict[str, Any]:
        """The config keys of a buildable judge with their defaults (required keys map to None)."""
        if not self.buildable:
            return {}
        out: dict[str, Any] = {}
        for name, f in self.cls.Settings.model_fields.items():
            default = None if f.is_required() else f.get_default(call_default_factory=True)
            out[name] = default.model_dump(mode="json") if hasattr(default, "model_dump") else default
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": f"{self.cls.__module__}.{self.cls.__qualname__}",
            "kind": self.kind,
            "paper": self.paper,
            "summary": self.summary,
            "config": self.settings if self.buildable else None,
        }


_JUDGES: dict[str, JudgeSpec] = {}


def register_judge(name: str, *, paper: str, kind: str = "scores") -> Callable[[type], type]:
    if kind not in ("scores", "preferences"):
        raise ValueError(f"judge '{name}': kind must be scores or preferences, got '{kind}'")

    def wrap(cls: type) -> type:
        if name in _JUDGES and _JUDGES[name].cls is not cls:
            raise ValueError(f"judge '{name}' is registered twice")
        _JUDGES[name] = JudgeSpec(name, cls, paper, kind)
        cls.name = name
        return cls

    return wrap


def _load() -> None:
    """Import every public module of ``alignlab.judges``; each registers its judges as it is imported."""
    package = importlib.import_module("alignlab.judges")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"alignlab.judges.{info.name}")


def all_judges() -> list[JudgeSpec]:
    _load()
    return sorted(_JUDGES.values(), key=lambda s: s.name)


def get_judge(name: str, where: str = "") -> JudgeSpec:
    """The registered judge ``name``; an unknown name raises naming the close ones (``where`` prefixes it)."""
    _load()
    if name not in _JUDGES:
        close = difflib.get_close_matches(name, list(_JUDGES), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise JudgeConfigError(f"{where}unknown judge '{name}'.{hint} Run `alignlab judges` to list them.")
    return _JUDGES[name]
