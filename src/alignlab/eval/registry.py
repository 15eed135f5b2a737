"""The evaluation registry: name → metric function, with its paper and what it reads (``alignlab eval list``).

Every metric has one signature: keyword inputs (the evidence it reads, named by its ``inputs``) and keyword
options, returning a :class:`~alignlab.eval.uncertainty.MetricResult` whose every figure carries a standard
error or a bootstrap interval. Each module of this package registers its metrics when the registry is first
read (nothing lists them by hand), as the objective and judge registries do::

    @register_metric("winrate", paper="Dubois et al. 2023 (AlpacaFarm), arXiv 2305.14387", inputs="judgements")
    def winrate(*, verdicts, **options) -> MetricResult: ...

    run_metric("winrate", verdicts=[1, 0.5, 0])

``inputs`` says which ``alignlab eval`` subcommand feeds the metric: ``judgements`` (per-prompt verdicts of a
model against a baseline, with the outputs), ``battles`` (pairwise matches among several systems), ``pairs``
(a reward model or judge on labelled pairs), ``feedback`` (the feedback data itself), ``curve`` (KL and
reward points of a run or a sweep), ``model`` (a policy and its tokens: hidden states, distributions).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INPUT_KINDS = ("judgements", "battles", "pairs", "feedback", "curve", "model")


class MetricError(ValueError):
    """A user named an unknown metric or gave it inputs it cannot use; the message says the fix."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[..., Any]
    paper: str
    inputs: str
    checked: str

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def parameters(self) -> dict[str, Any]:
        """Keyword parameters with their defaults (required ones map to None)."""
        out: dict[str, Any] = {}
        for name, p in inspect.signature(self.fn).parameters.items():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                out[name] = None if p.default is p.empty else p.default
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": self.inputs,
            "paper": self.paper,
            "checked": self.checked,
            "summary": self.summary,
            "parameters": {k: v for k, v in self.parameters.items() if _jsonable(v)},
        }


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple, dict))


_METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, *, paper: str, inputs: str, checked: str = "") -> Callable:
    """Register ``fn`` as metric ``name`` (``inputs``: one of INPUT_KINDS; ``checked``: where the formula was
    compared with the paper or its official code)."""
    if inputs not in INPUT_KINDS:
        raise ValueError(f"metric '{name}': inputs must be one of {INPUT_KINDS}, got '{inputs}'")

    def wrap(fn: Callable) -> Callable:
        if name in _METRICS and _METRICS[name].fn is not fn:
            raise ValueError(f"metric '{name}' is registered twice")
        _METRICS[name] = MetricSpec(name, fn, paper, inputs, checked)
        fn.metric_name = name  # type: ignore[attr-defined]
        return fn

    return wrap


def _load() -> None:
    """Import every public module of ``alignlab.eval``; each registers its metrics as it is imported."""
    package = importlib.import_module("alignlab.eval")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"alignlab.eval.{info.name}")


def all_metrics() -> list[MetricSpec]:
    _load()
    return sorted(_METRICS.values(), key=lambda s: s.name)


def get_metric(name: str) -> MetricSpec:
    """The registered metric ``name``; an unknown name raises naming the close ones."""
    _load()
    if name not in _METRICS:
        close = difflib.get_close_matches(name, list(_METRICS), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise MetricError(f"unknown metric '{name}'.{hint} Run `alignlab eval list` to list them.")
    return _METRICS[name]


def run_metric(name: str, **kwargs: Any) -> Any:
    """Run metric ``name`` on keyword inputs/options; a keyword it does not take is a MetricError."""
    spec = get_metric(name)
    params = inspect.signature(spec.fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise MetricError(
                f"metric '{name}' does not take {', '.join(unknown)}; it takes {', '.join(params)}"
            )
    missing = [
        k for k, p in params.items() if p.default is p.empty and p.kind == p.KEYWORD_ONLY and k not in kwargs
    ]
    if missing:
        raise MetricError(f"metric '{name}' needs {', '.join(missing)}")
    return spec.fn(**kwargs)
