"""The data-tool registry: every tool of METHODS.md family L by name, with its paper and the test that
checks it (``alignlab data tools`` lists them).

Tools that only need records and numbers live in :mod:`alignlab.data` and register here when
:func:`all_tools` first reads the registry. Tools that call judges or samplers live above them
(:mod:`alignlab.recipes.curation`) and register when that package is imported (the CLI does).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("convert", "select", "label", "synthesize", "trees", "route")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    kind: str
    paper: str
    function: str  # "module:qualname" of the function that does it
    test: str  # the test of its METHODS block, as run here
    checked: str  # where its formula/algorithm was checked

    def describe(self) -> dict[str, Any]:
        return dict(vars(self))


_TOOLS: dict[str, ToolSpec] = {}


def register_tool(
    name: str, *, kind: str, paper: str, test: str, checked: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if kind not in KINDS:
        raise ValueError(f"data tool '{name}': kind must be one of {KINDS}, got '{kind}'")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        where = f"{fn.__module__}:{fn.__qualname__}"
        if name in _TOOLS and _TOOLS[name].function != where:
            raise ValueError(f"data tool '{name}' is registered twice")
        _TOOLS[name] = ToolSpec(name, kind, paper, where, test, checked)
        return fn

    return wrap


_DATA_MODULES = (
    "alignlab.data.converters",
    "alignlab.data.trees",
    "alignlab.data.select.deita",
    "alignlab.data.select.zip_fit",
    "alignlab.data.select.got_d",
    "alignlab.data.select.ches_filter",
    "alignlab.data.select.clear",
    "alignlab.data.label.symmetric",
    "alignlab.data.label.jury",
    "alignlab.data.label.relabel",
    "alignlab.data.label.route",
    "alignlab.data.synth",
)


def all_tools() -> list[ToolSpec]:
    for module in _DATA_MODULES:
        importlib.import_module(module)
    return sorted(_TOOLS.values(), key=lambda s: (KINDS.index(s.kind), s.name))


def get_tool(name: str) -> ToolSpec:
    all_tools()
    if name not in _TOOLS:
        import difflib

        close = difflib.get_close_matches(name, list(_TOOLS), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown data tool '{name}'.{hint} Run `alignlab data tools` to list them.")
    return _TOOLS[name]
