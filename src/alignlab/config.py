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

from alignlab.data.settings import DataSettings
from alignlab.generation.types import SamplingParams
from alignlab.models.loading import ModelSettings

# DataSettings and ModelSettings belong to their layers (data/settings.py, models/loading.py); they are
# composed here and stay importable from here.


class ConfigError(ValueError):
    """A user error in a config file or an override; the message names the key and the fix."""


class Strict(BaseModel):
    # allow_inf_nan=False: `epochs: .inf` or `learning_rate: .nan` are errors, not endless or silent runs.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    seed: int = Field(0, ge=0, lt=2**32)  # numpy's generators take seeds in [0, 2**32)
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

    @field_validator("adam_betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"each Adam beta must be in [0, 1), e.g. [0.9, 0.999]; got {list(value)}")
        return value

    @model_validator(mode="after")
    def _one_micro_batch_rule(self) -> TrainSettings:
        if self.micro_batch_size is not None and self.micro_batch_tokens is not None:
            raise ValueError(
                "set train.micro_batch_size (records per forward pass) or train.micro_batch_tokens "
                "(tokens per forward pass), not both"
            )
        return self


# ---------------------------------------------------------------------------------------------- online
# The ``online:`` section (online training: prompts, sampler, judge, how rewards become advantages); present
# only for online methods (grpo, ppo, rloo, ...). Settings left ``null`` take the method's choice (its
# rollout plan in ``objectives/online_rl.py``). Every field is documented in docs/online.md.


class SamplerSettings(Strict):
    """Which sampler backend runs generation (``hf``: the KV-cache loop; ``vllm``: GPU, extra ``vllm``)."""

    backend: Literal["hf", "vllm"] = "hf"
    batch_size: int = Field(256, gt=0)  # sequences per generation batch
    options: dict[str, Any] = Field(
        default_factory=dict
    )  # backend-specific (e.g. vLLM's gpu_memory_utilization)


class AdaptiveKL(Strict):
    """Ziegler et al.'s adaptive controller: β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon)."""

    target: float = Field(6.0, gt=0)
    horizon: int = Field(10000, gt=0)


class KLSettings(Strict):
    """The KL penalty in the REWARD: every token's reward loses ``coef · k_t`` before advantages
    (PPO, REINFORCE++, RLOO's sequence penalty Σ_t k_t), k_t computed from the sampling policy's and the
    reference's log-probs of the sampled token. ``estimator``: k1 = log π/π_ref, k2 = ½(log π/π_ref)²,
    k3 = π_ref/π − log(π_ref/π) − 1. ``adaptive``: Ziegler et al.'s controller moves ``coef`` toward a target
    KL. KL in the LOSS (GRPO's form) is the objective's own ``kl_coef`` / ``kl_estimator``.
    """

    coef: float = Field(0.0, ge=0)
    estimator: Literal["k1", "k2", "k3"] = "k1"
    adaptive: AdaptiveKL | None = None


class AdvantageSettings(Strict):
    """The advantage estimator and its parameters (see ``alignlab.objectives.advantages``)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RewardShaping(Strict):
    """What happens to the judge's rewards before advantages.

    ``missing_eos_penalty``: subtracted from the reward of a completion cut at ``max_new_tokens`` (TRL's
    option of the same name). ``normalize``: ``batch`` standardises rewards over the rollout, ``running``
    by a running mean/std (Secrets of RLHF's PPO-max), ``none``. ``clip``: then clip to ±clip.
    """

    missing_eos_penalty: float | None = Field(None, ge=0)
    normalize: Literal["none", "batch", "running"] = "none"
    clip: float | None = Field(None, gt=0)


class ReferenceUpdate(Strict):
    """How the reference policy moves: ``frozen`` (the initial policy), ``ema`` (θ_ref ← (1−α)θ_ref + αθ
    after every refresh), or ``previous_iteration`` (θ_ref ← θ every ``every`` refreshes)."""

    mode: Literal["frozen", "ema", "previous_iteration"] = "frozen"
    alpha: float = Field(0.1, gt=0, le=1)
    every: int = Field(1, gt=0)


class OnlineSettings(Strict):
    prompts: str = "builtin:arithmetic"
    prompts_limit: int | None = Field(None, gt=0)
    prompts_per_rollout: int = Field(8, gt=0)
    max_prompt_length: int = Field(512, gt=0)  # longer prompts are reported and skipped, never cut
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(n=4, max_new_tokens=32))
    judge: dict[str, Any] | str = Field(default_factory=lambda: {"name": "verifiable_answer"})
    # A simulated world (alignlab.sim WorldConfig settings) for judges that annotate one (``simulated``);
    # ``prompts: sim:text-world`` implies its world.
    world: dict[str, Any] | None = None
    advantage: AdvantageSettings | None = None  # null: the method's estimator
    kl: KLSettings | None = None  # null: the method's KL form
    reward: RewardShaping = Field(default_factory=RewardShaping)
    reference_update: ReferenceUpdate = Field(default_factory=ReferenceUpdate)
    epochs_per_rollout: int = Field(1, gt=0)
    minibatches: int = Field(1, gt=0)
    loss_aggregation: (
        Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"] | None
    ) = None  # null: the method's
    log_samples_every: int = Field(10, ge=0)  # print sample completions every N refreshes (0: never)
    max_no_eos_fraction: float = Field(0.9, ge=0, le=1)  # flag a sampler that rarely emits EOS

    @model_validator(mode="after")
    def _minibatches_divide(self) -> OnlineSettings:
        if self.prompts_per_rollout % self.minibatches:
            raise ValueError(
                f"online.minibatches ({self.minibatches}) must divide online.prompts_per_rollout "
                f"({self.prompts_per_rollout}): each minibatch takes whole groups of samples"
            )
        return self

    @property
    def steps_per_rollout(self) -> int:
        return self.epochs_per_rollout * self.minibatches


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
