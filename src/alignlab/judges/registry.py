"""The judges registry: name → class, with the paper and a one-line summary (``alignlab judges``).

Losses that train reward models are objectives (``alignlab objectives --family reward_model``); the
entries here are the things that *use* models (or rules) to score completions.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": f"{self.cls.__module__}.{self.cls.__qualname__}",
            "kind": self.kind,
            "paper": self.paper,
            "summary": self.summary,
        }


_JUDGES: dict[str, JudgeSpec] = {}
# Modules that register judges; imported on first use of the registry.
_MODULES = (
    "reward_model",
    "ensemble",
    "implicit",
    "flr",
    "principles",
    "rules",
    "preference",
    "armorm",
    "calibration",
    "context_conditioned",
    "fine_grained",
    "maxmin",
    "selfref",
    "text_metrics",
    "bleuberi",
    "conservative_ensemble",
)


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
    for module in _MODULES:
        importlib.import_module(f"alignlab.judges.{module}")


def all_judges() -> list[JudgeSpec]:
    _load()
    return sorted(_JUDGES.values(), key=lambda s: s.name)


def get_judge(name: str) -> JudgeSpec:
    _load()
    if name not in _JUDGES:
        close = difflib.get_close_matches(name, list(_JUDGES), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown judge '{name}'.{hint} Run `alignlab judges` to list them.")
    return _JUDGES[name]
