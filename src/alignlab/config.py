"""Run configuration: YAML + ``--set key=value`` overrides, validated by pydantic.

Every section forbids unknown keys, so a typo is an error naming the key and the allowed ones.
The fully resolved config is written to ``<run dir>/config.yaml``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alignlab.models.loading import ModelSettings


class ConfigError(ValueError):
    """A user error in a config file or an override; the message names the key and the fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSettings(Strict):
    train: str = "builtin:tasks"
    eval: str | None = None
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    format: str = "auto"
    split: str | None = None
    convert: str | None = None
    convert_args: dict[str, Any] = Field(default_factory=dict)
    on_error: Literal["raise", "skip"] = "raise"
    limit: int | None = Field(None, gt=0)
    max_length: int = Field(1024, gt=1)
    max_prompt_length: int = Field(512, gt=0)
    truncate_prompt: Literal["keep_end", "keep_start"] = "keep_end"
    truncate_completion: Literal["keep_start", "drop"] = "keep_start"


class ReferenceSettings(Strict):
    path: str | None = None  # None: the initial policy (or, with LoRA, the base with adapters off)
    cache: bool = True
    cache_dir: str | None = None


class TrainSettings(Strict):
    steps: int | None = Field(None, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(8, gt=0)
    micro_batch_size: int | None = Field(None, gt=0)
    micro_batch_tokens: int | None = Field(None, gt=0)  # or: micro-batches of at most this many tokens
    learning_rate: float = Field(1e-5, gt=0)
    schedule: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    layout: Literal["auto", "packed", "separate"] = "auto"
    attention: Literal["auto", "sdpa", "segment", "flex"] = "auto"  # see docs/engine.md
    compile: bool = False  # torch.compile the model body
    activation_offload: bool = False  # keep the activations saved for backward in (pinned) CPU memory
    threads: int | None = Field(None, gt=0)  # torch CPU threads; None: torch's default
    tokens_per_row: int = Field(2048, gt=0)
    logits_chunk_size: int = Field(1024, gt=0)
    log_every: int = Field(1, gt=0)
    eval_every: int = Field(0, ge=0)
    save_every: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    tracker: Literal["none", "tensorboard", "wandb", "mlflow"] = "none"
    progress: bool = True

    @model_validator(mode="after")
    def _one_micro_batch_rule(self) -> TrainSettings:
        if self.micro_batch_size is not None and self.micro_batch_tokens is not None:
            raise ValueError(
                "set train.micro_batch_size (records per forward pass) or train.micro_batch_tokens "
                "(tokens per forward pass), not both"
            )
        return self


class RunConfig(Strict):
    name: str = "run"
    out: str | None = None
    model: ModelSettings = Field(default_factory=ModelSettings)
    reference: ReferenceSettings = Field(default_factory=ReferenceSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    objectives: list[dict[str, Any] | str] = Field(default_factory=lambda: [{"name": "sft"}])
    train: TrainSettings = Field(default_factory=TrainSettings)

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
        if not p.exists():
            raise ConfigError(f"{p}: no such config file")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from None
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
    return config


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
