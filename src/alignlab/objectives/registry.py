"""The objectives registry: a method is a function registered under the name users type in a config.

    @objective("dpo", family="pairwise", feedback="pairs", needs=("reference",),
               paper="Rafailov et al. 2023, arXiv 2305.18290")
    def dpo(batch: PairBatch, beta: float = 0.1) -> Tensor: ...

The function's keyword parameters (with defaults and type hints) are its hyper-parameters; the
registry validates a config against them. It returns the loss per example (per pair, per list, per
completion) before reduction, or ``(loss, metrics)``. A parameter named ``state`` receives an
``ObjectiveState`` (``objectives/state.py``): a dict that persists across training steps and is saved in
checkpoints (running means, EMA statistics); during evaluation it is a copy with ``state.training``
False, so evaluation never moves it.

How a part's per-example losses become one number is the loop's job (``compose.py``): by default the
weighted mean ``Σ w·ℓ / Σ w`` over the global batch. An objective registered with ``reduction="sum"``
(token-mean RL losses, whose normaliser is the global batch's token count) takes a ``normalisers``
parameter (:class:`~alignlab.objectives.compose.Normalisers`: the global batch's total weight, tokens,
sequences and records) and returns per-example losses that already carry their normalisation; the loop
sums them.

A ``prepare`` hook (``prepare(records, its own hyper-parameters...) -> records``) declares its own
hyper-parameters in its signature: they join the objective's (validated the same way and listed with
them), the hook receives only those it names and the loss only those it names. A hook may not take
``**kwargs``: each receives exactly what it declares, so a parameter the loss does not read is declared
once, by the hook.

An objective whose running state must not depend on how a step is cut registers ``step_statistics``
(:class:`StepStatistics`): the loop gathers additive sums (or, ``per_example``, every example's row) over
the whole step's global batch (every micro-batch, every process), folds them into the state once, before
any micro-batch's loss (or after the step), and the loss only reads the state (BCO's running δ) and its
examples' ``step_results`` (β-DPO's filter). Called outside the loop, on one batch, the batch is the step.

Beyond the loss, a registration may give ``needs_for(params)`` (engine needs that depend on the
hyper-parameters, e.g. sft's prompt loss) and ``callback(params)`` (what the objective needs from the
training loop: see ``objectives/callbacks.py``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.objectives.callbacks import CallbackFactory
from alignlab.objectives.state import StepStatistics
from alignlab.scoring.scores import FULL_VOCAB_REFERENCE_NEEDS, NEEDS

# What an objective consumes; see objectives/views.py for the batch each one receives.
FEEDBACK = {
    "pairs": "PairBatch: chosen/rejected pairs (from rankings; K=2 rankings are pairs)",
    "ranking": "ListBatch: K-way rankings, ties allowed",
    "labels": "PointBatch: good/bad label per completion, paired or unpaired",
    "scores": "ListBatch with ratings: named scalar ratings per completion",
    "critique": "ListBatch built from text critiques by the objective's prepare hook",
    "demonstrations": "PointBatch: completions to imitate (the best of a ranking, the good of labels)",
    "rewards": "PairBatch/ListBatch of reward-head outputs (reward models)",
    "rollouts": "RolloutBatch: completions sampled during training with their advantages (online RL)",
}

# Data an objective needs beyond its feedback kind; a recipe that cannot supply one skips the objective.
REQUIREMENTS = {
    "reference_response": "each record carries a response sampled from the reference model (role reference_response)",
    "reference_samples": "each record carries responses sampled from the reference model (role sample)",
    "long_and_short_context": "each record's meta holds long_context and the compressed short_context",
}

FAMILIES = (
    "sft",
    "reward_model",
    "pairwise",
    "listwise",
    "pointwise",
    "reference_free",
    "token_level",
    "noise_robust",
    "online_rl",
)


REDUCTIONS = ("weighted_mean", "sum")


class ObjectiveError(ValueError):
    """A user named an unknown objective or gave it a bad hyper-parameter."""


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    annotation: str


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str
    fn: Callable[..., Any]
    family: str
    feedback: str
    needs: frozenset[str]
    paper: str
    params: dict[str, Param]
    stateful: bool
    prepare: Callable[..., Any] | None = None
    aliases: tuple[str, ...] = ()
    needs_for: Callable[[dict[str, Any]], Iterable[str]] | None = None
    callback: CallbackFactory | None = None
    reduction: str = "weighted_mean"
    loss_params: frozenset[str] = frozenset()  # the hyper-parameters the loss function takes
    prepare_params: frozenset[str] = frozenset()  # the hyper-parameters the prepare hook takes
    renamed: dict[str, str] = field(default_factory=dict)  # old hyper-parameter name -> its new name
    requires: frozenset[str] = frozenset()  # REQUIREMENTS: data beyond the feedback kind
    step_statistics: StepStatistics | None = None  # state folded once per step from the global batch

    def loss_kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k in self.loss_params}

    def prepare_kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k in self.prepare_params}

    def needs_with(self, params: dict[str, Any]) -> frozenset[str]:
        """What the engine must compute for this objective with these hyper-parameters."""
        return self.needs | frozenset(self.needs_for(params) if self.needs_for else ())

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def uses_reference(self) -> bool:
        return "reference" in self.needs or bool(self.needs & FULL_VOCAB_REFERENCE_NEEDS)

    def check_params(self, given: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Return the full hyper-parameter dict, or raise naming the bad key and the allowed ones."""
        out = {name: p.default for name, p in self.params.items()}
        for key, value in given.items():
            if key in self.renamed and key not in self.params:
                raise ObjectiveError(
                    f"{where}objective '{self.name}': hyper-parameter '{key}' was renamed "
                    f"'{self.renamed[key]}'; write {self.renamed[key]}: {value!r} (see `alignlab objectives "
                    f"{self.name}`)"
                )
            if key not in self.params:
                allowed = ", ".join(sorted(self.params)) or "none"
                close = difflib.get_close_matches(key, list(self.params), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ObjectiveError(
                    f"{where}objective '{self.name}' has no hyper-parameter '{key}'{hint} (allowed: {allowed})"
                )
            out[key] = _coerce(self.name, self.params[key], value, where)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "feedback": self.feedback,
            "needs": sorted(self.needs),
            "paper": self.paper,
            "summary": self.summary,
            "params": {n: p.default for n, p in self.params.items()},
            "aliases": list(self.aliases),
            "requires": sorted(self.requires),
        }


_REGISTRY: dict[str, ObjectiveSpec] = {}


def objective(
    name: str,
    *,
    family: str,
    feedback: str,
    paper: str,
    needs: tuple[str, ...] | set[str] = (),
    prepare: Callable[..., Any] | None = None,
    aliases: tuple[str, ...] = (),
    needs_for: Callable[[dict[str, Any]], Iterable[str]] | None = None,
    callback: CallbackFactory | None = None,
    reduction: str = "weighted_mean",
    renamed: dict[str, str] | None = None,
    requires: tuple[str, ...] = (),
    step_statistics: StepStatistics | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as the objective ``name`` (see the module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"objective '{name}': family must be one of {FAMILIES}, got '{family}'")
    if feedback not in FEEDBACK:
        raise ValueError(f"objective '{name}': feedback must be one of {sorted(FEEDBACK)}, got '{feedback}'")
    if reduction not in REDUCTIONS:
        raise ValueError(f"objective '{name}': reduction must be one of {REDUCTIONS}, got '{reduction}'")
    unknown_data = set(requires) - set(REQUIREMENTS)
    if unknown_data:
        raise ValueError(
            f"objective '{name}': unknown requires {sorted(unknown_data)}; known: {sorted(REQUIREMENTS)}"
        )
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"objective '{name}': unknown needs {sorted(unknown)}; known: {sorted(NEEDS)}")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"objective '{name}' is registered twice")
        signature = inspect.signature(fn)
        params: dict[str, Param] = {}
        stateful = False
        for i, (pname, p) in enumerate(signature.parameters.items()):
            if i == 0:
                continue  # the batch
            if pname == "state":
                stateful = True
                continue
            if pname == "normalisers":
                continue  # given by the loop to reduction="sum" objectives
            if pname == "step_results":
                continue  # per-example results of the step's fold (StepStatistics(per_example=True))
            if p.default is inspect.Parameter.empty:
                raise ValueError(f"objective '{name}': hyper-parameter '{pname}' needs a default")
            annotation = (
                p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
            )
            params[pname] = Param(pname, p.default, str(annotation))
        loss_params = frozenset(params)
        prepare_params = _prepare_params(name, prepare, params) if prepare is not None else frozenset()
        spec = ObjectiveSpec(
            name=name,
            fn=fn,
            family=family,
            feedback=feedback,
            needs=frozenset(needs),
            paper=paper,
            params=params,
            stateful=stateful,
            prepare=prepare,
            aliases=tuple(aliases),
            needs_for=needs_for,
            callback=callback,
            reduction=reduction,
            loss_params=loss_params,
            prepare_params=prepare_params,
            renamed=dict(renamed or {}),
            requires=frozenset(requires),
            step_statistics=step_statistics,
        )
        if step_statistics is not None and not stateful and "step_results" not in signature.parameters:
            raise ValueError(
                f"objective '{name}': step_statistics needs a 'state' or 'step_results' parameter"
            )
        if "step_results" in signature.parameters and (
            step_statistics is None or not step_statistics.per_example
        ):
            raise ValueError(f"objective '{name}': 'step_results' needs per-example step_statistics")
        if reduction == "sum" and "normalisers" not in signature.parameters:
            raise ValueError(f"objective '{name}': reduction='sum' needs a 'normalisers' parameter")
        _REGISTRY[name] = spec
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return register


_ALIASES: dict[str, str] = {}


def get(name: str) -> ObjectiveSpec:
    load_catalog()
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY) + list(_ALIASES), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ObjectiveError(f"unknown objective '{name}'.{hint} Run `alignlab objectives` to list them all.")
    return _REGISTRY[name]


def all_specs() -> list[ObjectiveSpec]:
    load_catalog()
    return sorted(_REGISTRY.values(), key=lambda s: (FAMILIES.index(s.family), s.name))


# Modules of this package that define machinery, not objectives; every other public module is the catalog.
MACHINERY = frozenset(
    {
        "registry",
        "views",
        "compose",
        "modifiers",
        "callbacks",
        "functional",
        "docs",
        "metrics",
        "record_rewrites",
        "score_tensors",
        "state",
    }
)


def load_catalog() -> None:
    """Import every catalog module of this package once; each registers its objectives on import."""
    package = __name__.rpartition(".")[0]
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name not in MACHINERY and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def _prepare_params(name: str, prepare: Callable[..., Any], params: dict[str, Param]) -> frozenset[str]:
    """The prepare hook's own hyper-parameters (after ``records``), added to ``params``; a parameter both
    declare must have one default. A hook taking ``*args`` or ``**kwargs`` is refused: it must name what
    it reads, so that it receives nothing it does not declare."""
    own: set[str] = set()
    for i, (pname, p) in enumerate(inspect.signature(prepare).parameters.items()):
        if i == 0:
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            stars = "**" if p.kind is inspect.Parameter.VAR_KEYWORD else "*"
            raise ValueError(
                f"objective '{name}': prepare hook {prepare.__name__} takes {stars}{pname}; "
                "declare each hyper-parameter it reads as a keyword with a default"
            )
        if p.default is inspect.Parameter.empty:
            raise ValueError(f"objective '{name}': prepare hook parameter '{pname}' needs a default")
        if pname in params and params[pname].default != p.default:
            raise ValueError(
                f"objective '{name}': '{pname}' has default {params[pname].default!r} in the loss and "
                f"{p.default!r} in the prepare hook; declare it once"
            )
        annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        params.setdefault(pname, Param(pname, p.default, str(annotation)))
        own.add(pname)
    return frozenset(own)


def _coerce(objective_name: str, param: Param, value: Any, where: str) -> Any:
    default = param.default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise TypeError
        if isinstance(default, int) and not isinstance(value, bool):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(value) if isinstance(value, (int, str)) else _raise()
        if isinstance(default, float):
            number = float(value) if not isinstance(value, bool) else _raise()
            _check_range(objective_name, param.name, number, where)
            return number
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
    except ObjectiveError:
        raise
    except (TypeError, ValueError):
        raise ObjectiveError(
            f"{where}objective '{objective_name}': '{param.name}' must be {type(default).__name__} "
            f"(default {default!r}), got {value!r}"
        ) from None
    return value


def _raise() -> Any:
    raise TypeError


# Hyper-parameters whose meaning fixes a range, by name (the same name means the same thing in every
# objective of the catalog): the inverse temperatures are > 0, weights and KL coefficients >= 0.
_POSITIVE = ("beta", "beta_chosen", "beta_rejected", "beta_r")
_NON_NEGATIVE_SUFFIXES = ("_weight", "_coef")
# ORPO's `beta` is the weight λ of its odds-ratio term (TRL's ORPOConfig.beta), not a temperature:
# λ = 0 is plain SFT on the chosen answers, so it is only required to be >= 0.
_BETA_IS_A_WEIGHT = frozenset({"orpo"})


def _check_range(objective_name: str, name: str, value: float, where: str) -> None:
    problem = ""
    if not math.isfinite(value):
        problem = "must be a finite number"
    elif name == "beta" and objective_name in _BETA_IS_A_WEIGHT:
        problem = "must be >= 0 (it weights the odds-ratio term)" if value < 0 else ""
    elif name in _POSITIVE and value <= 0:
        problem = "must be > 0 (it is an inverse temperature)"
    elif name == "label_smoothing" and not 0 <= value < 0.5:
        problem = "must be in [0, 0.5) (the probability that a label is flipped)"
    elif name.endswith(_NON_NEGATIVE_SUFFIXES) and value < 0:
        problem = "must be >= 0"
    if problem:
        raise ObjectiveError(f"{where}objective '{objective_name}': '{name}' {problem}, got {value!r}")
