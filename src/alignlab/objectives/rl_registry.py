"""Name-keyed registries for the RL toolkit: advantage estimators, KL estimators, policy losses and loss
aggregations (the model is verl's ``core_algos`` registries).

Every entry of one registry has the SAME call signature — the registry checks it at registration — and
its keyword-only hyper-parameters carry defaults and type hints, so a config entry such as
``{name: grpo, scale: batch}`` is validated against them before a run starts::

    ADVANTAGES = Registry("advantage estimator", signature=("inputs",))

    @ADVANTAGES.register("rloo", paper="Ahmadian et al. 2024, arXiv 2402.14740")
    def rloo(inputs: AdvantageInputs) -> Advantages: ...

    fn = ADVANTAGES.bind("grpo", {"scale": "batch"})   # validated, ready to call: fn(inputs)
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alignlab.objectives.registry import ObjectiveError, Param, _coerce


@dataclass(frozen=True)
class Entry:
    """One registered function: its name, the function, its hyper-parameters and what it needs."""

    name: str
    fn: Callable[..., Any]
    params: dict[str, Param]
    paper: str
    needs: frozenset[str]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""


class Registry:
    """Functions registered under the names users type; all share the positional ``signature``."""

    def __init__(self, kind: str, signature: tuple[str, ...]):
        self.kind = kind
        self.signature = signature
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, *, paper: str, needs: tuple[str, ...] = ()
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            params: dict[str, Param] = {}
            positional: list[str] = []
            for pname, p in inspect.signature(fn).parameters.items():
                if p.kind is inspect.Parameter.KEYWORD_ONLY:
                    if p.default is inspect.Parameter.empty:
                        raise ValueError(f"{self.kind} '{name}': hyper-parameter '{pname}' needs a default")
                    annotation = p.annotation if isinstance(p.annotation, str) else str(p.annotation)
                    params[pname] = Param(pname, p.default, annotation)
                else:
                    positional.append(pname)
            if tuple(positional) != self.signature:
                raise ValueError(
                    f"{self.kind} '{name}' takes ({', '.join(positional)}); every {self.kind} takes "
                    f"({', '.join(self.signature)}, *, hyper-parameters)"
                )
            if not inspect.getdoc(fn):
                raise ValueError(f"{self.kind} '{name}' needs a docstring with its formula and paper")
            self._entries[name] = Entry(name, fn, params, paper, frozenset(needs))
            return fn

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ObjectiveError(f"unknown {self.kind} '{name}'.{hint} Known: {', '.join(self.names())}")
        return self._entries[name]

    def check_params(self, name: str, given: dict[str, Any] | None = None, where: str = "") -> dict[str, Any]:
        """The full hyper-parameter dict for ``name``, or an error naming the bad key and the allowed ones."""
        entry = self.get(name)
        out = {n: p.default for n, p in entry.params.items()}
        for key, value in (given or {}).items():
            if key not in entry.params:
                allowed = ", ".join(sorted(entry.params)) or "none"
                close = difflib.get_close_matches(key, list(entry.params), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ObjectiveError(
                    f"{where}{self.kind} '{name}' has no setting '{key}'{hint} (allowed: {allowed})"
                )
            param = entry.params[key]
            if param.default is None and value is not None and "float" in param.annotation:
                param = Param(key, 0.0, param.annotation)  # optional float: coerce like a float
            out[key] = _coerce(name, param, value, where)
        return out

    def bind(self, name: str, given: dict[str, Any] | None = None, where: str = "") -> Callable[..., Any]:
        """``name``'s function with validated hyper-parameters bound: call it with the positional inputs."""
        return functools.partial(self.get(name).fn, **self.check_params(name, given, where))

    def __call__(self, name: str, *args: Any, **params: Any) -> Any:
        """Call ``name`` on ``args`` with hyper-parameters ``params`` (validated)."""
        return self.bind(name, params)(*args)
