"""TRL's argument names in alignlab's terms: which config key each sets and how its text is read.

:data:`ARGUMENTS` are set one to one; :data:`SPECIAL` are read together by ``trl_map.translate`` (the batch,
Adam's betas, precision, LoRA, the objective); :data:`IGNORED` change nothing in alignlab and are listed.
Sources: transformers.TrainingArguments, trl.ModelConfig, trl.ScriptArguments and TRL 1.16's trainer
configs (tests/cli/test_trl_map.py checks every name here against them). ``lr_scheduler_type`` is taken
only where alignlab's schedule gives the same rate at every step (tests/cli/test_trl_schedules.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class TrlArgumentError(ValueError):
    """A TRL argument alignlab cannot take (the message says what to use instead)."""


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    return float(value)


def read_bool(value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("", "1", "true", "yes", "on"):  # a bare flag (`--bf16`) is true
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise TrlArgumentError(f"expected true or false, got {value!r}")


def _schedule(value: str) -> str:
    """TRL's (transformers') ``lr_scheduler_type`` as ``train.schedule``: the same name where alignlab has
    a schedule with the same multiplier at every step (train/schedule.py, compared with
    ``transformers.get_scheduler`` in tests/train/test_schedule.py); any other is refused, never replaced."""
    from alignlab.train.schedule import SCHEDULES

    if value not in SCHEDULES:
        raise TrlArgumentError(
            f"no alignlab equivalent of schedule {value!r}: train.schedule takes "
            f"{', '.join(SCHEDULES)} (the same multipliers as transformers'); pass one of those"
        )
    return value


def _tracker(value: str) -> str:
    first = str(value).split(",")[0].strip().strip("[]'\" ")
    if first in ("none", "tensorboard", "wandb", "mlflow"):
        return first
    if first in ("all", ""):
        return "none"
    raise TrlArgumentError(f"report_to {value!r}: alignlab reports to none, tensorboard, wandb or mlflow")


def _target_modules(value: str) -> Any:
    text = str(value).strip()
    if text.startswith("["):
        return json.loads(text.replace("'", '"'))
    return text if text == "all-linear" else [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class Argument:
    """A TRL argument: the alignlab key it sets and how its text becomes the value."""

    key: str
    convert: Callable[[str], Any] = str
    note: str = ""


# TRL argument -> alignlab config key. Arguments that shape the batch, the objective or warm-up are
# handled in :func:`translate` (see SPECIAL). Sources: transformers.TrainingArguments, trl.ModelConfig,
# trl.ScriptArguments and the trainer configs.
ARGUMENTS: dict[str, Argument] = {
    # script arguments
    "dataset_name": Argument("data.train", note="a Hub id, hf://datasets/owner/name/file, or a local path"),
    "dataset_train_split": Argument("data.split"),
    # model arguments
    "model_name_or_path": Argument("model.path"),
    "model_revision": Argument("model.revision"),
    "dtype": Argument("model.dtype"),
    "trust_remote_code": Argument("model.trust_remote_code", read_bool),
    "gradient_checkpointing": Argument("model.gradient_checkpointing", read_bool),
    "lora_r": Argument("model.lora.r", _int),
    "lora_alpha": Argument("model.lora.alpha", _int),
    "lora_dropout": Argument("model.lora.dropout", _float),
    "lora_target_modules": Argument("model.lora.target_modules", _target_modules),
    "load_in_4bit": Argument("model.lora.load_in_4bit", read_bool),
    # training arguments
    "output_dir": Argument("out"),
    "run_name": Argument("name"),
    "max_steps": Argument("train.steps", _int),
    "num_train_epochs": Argument("train.epochs", _float),
    "learning_rate": Argument("train.learning_rate", _float),
    "lr_scheduler_type": Argument(
        "train.schedule",
        _schedule,
        note="constant, constant_with_warmup, linear or cosine, the same rate at every step as transformers'; "
        "others are refused. TRL's default is linear, alignlab's cosine: name it to match a TRL run",
    ),
    "weight_decay": Argument("train.weight_decay", _float),
    "max_grad_norm": Argument("train.max_grad_norm", _float),
    "seed": Argument("train.seed", _int),
    "logging_steps": Argument("train.log_every", _int),
    "eval_steps": Argument("train.eval_every", _int),
    "save_steps": Argument("train.save_every", _int),
    "save_total_limit": Argument("train.keep_checkpoints", _int),
    "report_to": Argument("train.tracker", _tracker),
    "torch_compile": Argument("train.compile", read_bool),
    # trainer configs
    "max_length": Argument("data.max_length", _int),
    "max_prompt_length": Argument("data.max_prompt_length", _int),
}

# Handled by translate(): the batch, Adam's betas, precision, LoRA on/off, the objective and its knobs.
SPECIAL: dict[str, str] = {
    "per_device_train_batch_size": "train.micro_batch_size; train.batch_size = it × gradient_accumulation_steps × processes",
    "gradient_accumulation_steps": "with per_device_train_batch_size: train.batch_size",
    "adam_beta1": "train.adam_betas[0]",
    "adam_beta2": "train.adam_betas[1]",
    "bf16": "train.mixed_precision: bf16",
    "fp16": "train.mixed_precision: fp16",
    "use_peft": "model.lora (with lora_r, lora_alpha, ...)",
    "loss_type": "objectives (one per loss type; see the tables below)",
    "loss_weights": "each objective's weight",
    "label_smoothing": "cdpo's ε (sigmoid), exo's ε, rdpo's ε (robust), cpo's and simpo's label_smoothing",
    "beta": "the objective's beta (ipo: tau)",
    "warmup_steps": "train.warmup_steps; a float in [0, 1) is a ratio of max_steps (as transformers reads it)",
    "simpo_gamma": "simpo's gamma_beta_ratio = simpo_gamma / beta (CPO's loss_type simpo)",
}

# Arguments that change nothing in alignlab (logging, hub upload, evaluation batch): accepted and listed.
IGNORED: dict[str, str] = {
    "per_device_eval_batch_size": "the held-out pass uses the training micro-batches",
    "push_to_hub": "save the model from <run dir>/model yourself",
    "hub_model_id": "save the model from <run dir>/model yourself",
    "dataloader_num_workers": "records are tokenised once, before training",
    "eval_strategy": "train.eval_every (0: never)",
    "save_strategy": "train.save_every (0: only at the end)",
    "logging_strategy": "train.log_every",
    "attn_implementation": "train.attention chooses the kernel",
    "do_train": "alignlab train trains",
    "do_eval": "held-out data: data.eval or data.eval_fraction",
    "use_liger_kernel": "alignlab computes log-probs in chunks (train.logits_chunk_size)",
    "padding_free": "train.layout: packed is the default where the model allows it",
    "precompute_ref_log_probs": "reference.cache is on by default",
    "disable_dropout": "alignlab has no such setting: the model trains with the dropout its config sets",
}

_BOOLEAN = {name for name, argument in ARGUMENTS.items() if argument.convert is read_bool} | {
    "bf16", "fp16", "use_peft", "push_to_hub", "do_train", "do_eval",
    "use_liger_kernel", "padding_free", "precompute_ref_log_probs", "disable_dropout",
}  # fmt: skip


def takes_value(name: str, following: str) -> bool:
    """Whether ``following`` is the value of ``--name`` (a flag takes one only when it reads as a bool)."""
    if following.startswith("--"):
        return False
    if name.replace("-", "_") in _BOOLEAN:
        return following.lower() in ("true", "false", "1", "0", "yes", "no")
    return True


def parse_argv(argv: list[str]) -> dict[str, str]:
    """``--name value``, ``--name=value`` and bare ``--flag`` (true) into a mapping; ``-`` and ``_`` alike."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            raise TrlArgumentError(f"unexpected argument {token!r}: TRL arguments look like --name value")
        name, eq, value = token[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if i + 1 < len(argv) and takes_value(name, argv[i + 1]):
                value, i = argv[i + 1], i + 1
            else:
                value = "true"
        out[name] = value
        i += 1
    return out
