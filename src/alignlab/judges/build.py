"""Judges from config: ``build_judge(spec)`` turns a name, a mapping or a Python object into a ``Judge``.

    build_judge("simulated", world=world)                                        # world: a sim TextWorld
    build_judge({"name": "reward_model", "path": "runs/rm"})
    build_judge({"name": "rm_ensemble", "mode": "min",
                 "members": [{"name": "reward_model", "path": "runs/rm-a"},
                             {"name": "reward_model", "path": "runs/rm-b"}]})
    build_judge({"name": "rule", "function": "my_rules:has_answer"})           # f(prompt, completion)
    build_judge({"name": "reward_function", "function": "rewards.py:accuracy"})  # TRL-style batch function
    build_judge(my_python_function)                                             # same as reward_function

A mapping names a registered judge (``name``) and that judge's settings; every other key is checked
against the judge's pydantic ``Settings`` (an unknown key names the close ones), and nested judge specs
(an ensemble's ``members``) are built by the same function, their errors naming their place
(``online.judge.members[1].path: …``). See docs/judges.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from alignlab.judges.base import Judge
from alignlab.judges.registry import JudgeConfigError, all_judges, get_judge
from alignlab.validation import format_settings_error

# A judge as a config gives it: a registered name, or a mapping with ``name`` and that judge's settings.
JudgeSpecInput = str | dict[str, Any]


def build_judge(spec: Any, where: str = "judge", **context: Any) -> Judge:
    """A ``Judge`` from ``spec`` (see the module docstring); errors raise ``JudgeConfigError`` naming ``where``.

    ``context``: objects the caller owns that a judge may need, passed to nested specs too; today ``world``
    (the simulated world that ``simulated`` annotates; worlds live above the judges).
    """
    if isinstance(spec, Judge):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    elif callable(spec):
        from alignlab.judges.functions import RewardFunctionJudge

        return RewardFunctionJudge(spec)
    if not isinstance(spec, dict):
        raise JudgeConfigError(
            f"{where}: expected a judge name or a mapping with 'name' (e.g. {{name: reward_model, path: runs/rm}}), "
            f"got {type(spec).__name__}"
        )
    if "name" not in spec:
        raise JudgeConfigError(
            f"{where}: a judge spec needs 'name' (one of {', '.join(buildable_judges())}); got keys {sorted(spec)}"
        )
    name = spec["name"]
    if not isinstance(name, str):
        raise JudgeConfigError(f"{where}.name: expected a judge name (text), got {name!r}")
    entry = get_judge(name, where=f"{where}: ")
    if not entry.buildable:
        raise JudgeConfigError(
            f"{where}: judge '{name}' is built in Python (it takes model objects), not from a config; "
            f"config-buildable judges: {', '.join(buildable_judges())}"
        )
    settings_cls: type[BaseModel] = entry.cls.Settings
    given = {k: v for k, v in spec.items() if k != "name"}
    try:
        settings = settings_cls.model_validate(given)
    except ValidationError as err:
        raise JudgeConfigError(format_settings_error(err, settings_cls, where, f"judge '{name}'")) from None
    return entry.cls.from_settings(settings, where, context)


def buildable_judges() -> list[str]:
    """The names ``build_judge`` accepts."""
    return [s.name for s in all_judges() if s.buildable]


def build_members(specs: list[Any], where: str, context: dict[str, Any]) -> list[Judge]:
    """Nested judge specs, each built with its place (``where[i]``) in its errors and the same context."""
    return [build_judge(spec, f"{where}[{i}]", **context) for i, spec in enumerate(specs)]
