"""The Python functions a judge config names (``package.module:function`` or ``file.py:function``), loaded
with errors that say what to fix, and the keyword arguments a function accepts."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignlab.judges.base import JudgeBatch
from alignlab.judges.registry import JudgeConfigError


def load_function(reference: str, where: str) -> Callable[..., Any]:
    """The function a config names as ``package.module:function`` or ``path/to/file.py:function``.

    Loading runs the module's code, as importing it would: a config that names a function is as trusted
    as the Python file it points to.
    """
    module_name, sep, attribute = reference.rpartition(":")
    if not sep or not module_name or not attribute:
        raise JudgeConfigError(
            f"{where}: expected 'module:function' or 'file.py:function' (e.g. my_rewards:accuracy), got {reference!r}"
        )
    if module_name.endswith(".py") or "/" in module_name:
        module = _module_from_file(Path(module_name), where)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise JudgeConfigError(
                f"{where}: cannot import module '{module_name}' ({err}); put it on PYTHONPATH or name the file, "
                f"e.g. ./{module_name.replace('.', '/')}.py:{attribute}"
            ) from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise JudgeConfigError(f"{where}: '{module_name}' has no '{attribute}'.{hint}")
        target = getattr(target, part)
    if not callable(target):
        raise JudgeConfigError(f"{where}: '{reference}' is a {type(target).__name__}, not a function")
    return target


def _module_from_file(path: Path, where: str) -> Any:
    path = path.expanduser()
    if not path.is_file():
        raise JudgeConfigError(f"{where}: no such Python file {path}")
    name = f"alignlab_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise JudgeConfigError(f"{where}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def accepts(fn: Callable[..., Any]) -> tuple[set[str], set[str], bool]:
    """(the keyword names ``fn`` takes, those without a default, whether it also takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in params if p.kind in keyword}
    required = {p.name for p in params if p.kind in keyword and p.default is inspect.Parameter.empty}
    return names, required, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def call_arguments(batch: JudgeBatch, accepted: tuple[set[str], set[str], bool], what: str) -> dict[str, Any]:
    """The keyword arguments a batch function receives (TRL's reward-function signature): ``prompts``,
    ``completions``, ``completion_ids`` (None for text-only completions), ``step`` and one list per record
    column; only those the function names unless it takes ``**kwargs``. ``accepted`` is ``accepts(fn)``;
    ``what`` names the function in the error raised when it requires an argument no call provides."""
    arguments: dict[str, Any] = {
        "prompts": list(batch.prompts),
        "completions": list(batch.completions),
        "completion_ids": None if batch.completion_ids is None else [list(i) for i in batch.completion_ids],
        "step": batch.step,
        **{k: list(v) for k, v in batch.columns.items()},
    }
    names, required, takes_any = accepted
    if takes_any:
        return arguments
    missing = sorted(n for n in required if n not in arguments)
    if missing:
        raise ValueError(
            f"{what} takes {missing} but no record column is named so (it receives {sorted(arguments)})"
        )
    return {k: v for k, v in arguments.items() if k in names}
