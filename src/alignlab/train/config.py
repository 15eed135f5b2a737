"""The run config the loop reads: YAML + ``--set key=value`` overrides, validated by pydantic.

``RunConfig`` composes the settings each layer owns: ``model`` (``models.loading.ModelSettings``),
``data`` (``data.settings.DataSettings``), ``objectives`` (checked against the objective registry),
``train`` and ``reference`` (``train/settings.py``) and ``online`` (``train/online_settings.py``). Every
section forbids unknown keys, so a typo is an error naming the key and the allowed ones. The fully
resolved config is written to ``<run dir>/config.yaml``. Users import all of it from ``alignlab.config``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from alignlab.data.settings import DataSettings
from alignlab.models.loading import ModelSettings
from alignlab.train.online_settings import OnlineSettings
from alignlab.train.settings import ReferenceSettings, Strict, TrainSettings


class ConfigError(ValueError):
    """A user error in a config file or an override; the message names the key and the fix."""


class RunConfig(Strict):
    name: str = "run"
    out: str | None = None
    model: ModelSettings = Field(default_factory=ModelSettings)
    reference: ReferenceSettings = Field(default_factory=ReferenceSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    objectives: list[dict[str, Any] | str] = Field(default_factory=lambda: [{"name": "sft"}])
    train: TrainSettings = Field(default_factory=TrainSettings)
    online: OnlineSettings | None = None  # online training: prompts, sampler, judge (docs/online.md)

    @field_validator("objectives", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (dict, str)) else value

    @property
    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.name}")


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set '{text}': expected key=value, e.g. --set train.learning_rate=1e-4")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, list):
            index = int(part)
            if index == len(node):
                node.append([] if nxt.isdigit() else {})
            elif isinstance(node[index], str):
                node[index] = {"name": node[index]}  # objectives: [dpo] -> [{name: dpo}]
            node = node[index]
            continue
        if part not in node or node[part] is None:
            node[part] = [] if nxt.isdigit() else {}
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        index = int(last)
        if index == len(node):
            node.append(value)
        else:
            node[index] = value
    else:
        node[last] = value


def load_config(
    path: str | Path | None, overrides: list[str] = (), base: dict[str, Any] | None = None
) -> RunConfig:
    """Read ``path`` (or start from ``base``), apply overrides, validate; errors name file and key."""
    where = str(path) if path else "config"
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        p = Path(path)
        loaded = _read_yaml(p)
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of sections (model, data, objectives, train)")
        data.update(loaded)
    if isinstance(data.get("objectives"), (str, dict)):
        data["objectives"] = [data["objectives"]]  # `objectives: dpo` is a list of one
    for text in overrides:
        keys, value = parse_override(text)
        try:
            apply_override(data, keys, value)
        except (IndexError, ValueError, TypeError, KeyError):
            raise ConfigError(
                f"--set {text}: '{'.'.join(keys)}' does not name a place in the config"
            ) from None
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None
    _check_objectives(config, where)
    check_device(config.model.device, where)
    return config


def _read_yaml(p: Path) -> Any:
    if not p.exists():
        raise ConfigError(f"{p}: no such config file")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder; give the config's YAML file (e.g. {p}/config.yaml)")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read the config ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (not UTF-8); give a YAML config") from None
    if "\x00" in text:
        raise ConfigError(f"{p}: holds binary data; give a YAML config")
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(err).split())}") from None


def check_device(device: str, where: str = "config") -> None:
    """Refuse a ``model.device`` this machine does not have, in one line (torch would fail much later)."""
    if device in ("auto", "cpu"):
        return
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        wanted = int(index) if index.isdigit() else 0
        if index and not index.isdigit():
            raise ConfigError(f"{where}: model.device '{device}': write cuda or cuda:N")
        if wanted >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ConfigError(
                f"{where}: model.device is '{device}' but this machine has {have}; use auto or cpu"
            )
    elif kind == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ConfigError(f"{where}: model.device is 'mps' but MPS is not available; use auto or cpu")
    else:
        raise ConfigError(
            f"{where}: model.device '{device}' is not a device; use auto, cpu, cuda, cuda:N or mps"
        )


def _check_objectives(config: RunConfig, where: str) -> None:
    from alignlab.objectives import Objective, ObjectiveError

    try:
        Objective.from_config(config.objectives)
    except (ObjectiveError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def format_validation_error(err: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        if e["type"] == "extra_forbidden":
            section = _section_model(e["loc"][:-1])
            allowed = sorted(section.model_fields) if section else []
            close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            lines.append(f"  {loc}: unknown key.{hint} Allowed: {', '.join(allowed)}")
        else:
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = [a for a in candidates if issubclass(a, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
