"""TRL's names in alignlab's terms: every TRL trainer, every loss type and the common arguments.

``alignlab train`` accepts the arguments of :data:`ARGUMENTS` as aliases (``--model_name_or_path``,
``--max_steps``, ...), and ``alignlab trl TRAINER ...`` reads a whole TRL command line or YAML file
(``cli/trl.py``). :func:`markdown` writes docs/from_trl.md from these tables; tests/cli/test_trl_map.py
reads TRL's own config classes and trainer sources (TRL 1.16) and fails when a trainer, a loss type or an
argument here is unknown to TRL, or one of TRL's is missing here.

The batch: TRL's effective batch is ``per_device_train_batch_size × gradient_accumulation_steps ×
processes``; alignlab's ``train.batch_size`` is that global batch and ``train.micro_batch_size`` the
per-process forward pass (alignlab's loss does not depend on how the batch is cut).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class TrlArgumentError(ValueError):
    """A TRL argument alignlab cannot take (the message says what to use instead)."""


@dataclass(frozen=True)
class Trainer:
    """A TRL trainer: its config class (``module:Class``), the alignlab objective its default loss is,
    and a note (what differs, or why there is no equivalent)."""

    config: str
    objective: str | None
    note: str = ""
    loss_types: Mapping[str, str | None] = field(default_factory=dict)  # TRL loss_type -> alignlab
    params: Mapping[str, str] = field(default_factory=dict)  # TRL config field -> objective parameter


_ONLINE = "online training (an `online:` section: prompts, sampler, judge; docs/online.md)"
_NONE = "no alignlab equivalent yet"

TRAINERS: dict[str, Trainer] = {
    "sft": Trainer(
        "trl:SFTConfig",
        "sft",
        "completion-only loss by default, as TRL's `completion_only_loss`",
        {"nll": "sft", "dft": None},
    ),
    "dpo": Trainer(
        "trl:DPOConfig",
        "dpo",
        "several loss types (TRL's `loss_type` list with `loss_weights`) become several weighted objectives",
        {
            "sigmoid": "dpo",
            "hinge": "hinge",
            "ipo": "ipo",
            "exo_pair": "exo",
            "nca_pair": "nca",
            "robust": "rdpo",
            "bco_pair": "bco_pair",
            "sppo_hard": "sppo_hard",
            "aot": "aot",
            "aot_unpaired": "aot_unpaired",
            "apo_zero": "apo_zero",
            "apo_down": "apo_down",
            "discopop": "discopop",
            "sft": "sft",
            "sigmoid_norm": "dpo_norm",
        },
        {"beta": "beta", "discopop_tau": "tau"},
    ),
    "kto": Trainer(
        "trl:KTOConfig",
        "kto",
        "",
        {"kto": "kto", "apo_zero_unpaired": "apo_zero_unpaired"},
        {"beta": "beta", "desirable_weight": "desirable_weight", "undesirable_weight": "undesirable_weight"},
    ),
    "kto-experimental": Trainer(
        "trl.experimental.kto:KTOConfig",
        "kto",
        "",
        {"kto": "kto"},
        {"beta": "beta", "desirable_weight": "desirable_weight", "undesirable_weight": "undesirable_weight"},
    ),
    "reward": Trainer(
        "trl:RewardConfig",
        "bt",
        "`center_rewards_coefficient` is bt's `center_coef`; a `margin` column is read by bt_margin",
        params={"center_rewards_coefficient": "center_coef"},
    ),
    "orpo": Trainer(
        "trl.experimental.orpo:ORPOConfig",
        "orpo",
        "TRL's `beta` is the odds-ratio weight λ",
        params={"beta": "beta"},
    ),
    "cpo": Trainer(
        "trl.experimental.cpo:CPOConfig",
        "cpo",
        "SimPO through CPO (`loss_type: simpo`) is alignlab's simpo, `cpo_alpha` its `sft_weight`",
        {"sigmoid": "cpo", "simpo": "simpo", "hinge": None, "ipo": None, "alphapo": None, "kto_pair": None},
        {"beta": "beta", "cpo_alpha": "cpo_alpha", "label_smoothing": "label_smoothing"},
    ),
    "grpo": Trainer(
        "trl:GRPOConfig",
        "grpo",
        _ONLINE + "; alignlab's grpo normalises by the tokens of the whole global batch (DAPO's form)",
        {
            "grpo": "grpo",
            "dapo": "grpo",
            "bnpo": "grpo",
            "dr_grpo": "dr_grpo",
            "cispo": None,
            "sapo": None,
            "luspo": None,
            "vespo": None,
        },
    ),
    "rloo": Trainer("trl:RLOOConfig", "rloo", _ONLINE),
    "online_dpo": Trainer(
        "trl.experimental.online_dpo:OnlineDPOConfig",
        None,
        _NONE + " (offline DPO on pairs you sample and label: `alignlab train`)",
        {"sigmoid": None, "ipo": None},
    ),
    "tpo": Trainer(
        "trl.experimental.tpo:TPOConfig",
        "tpo_triple",
        "",
        {"sigmoid": "tpo_triple", "hinge": None, "ipo": None, "tpo-l": None},
    ),
    "distillation": Trainer("trl:DistillationConfig", None, _NONE + " (knowledge distillation)"),
    "distillation-experimental": Trainer(
        "trl.experimental.distillation:DistillationConfig", None, _NONE + " (knowledge distillation)"
    ),
    "gkd": Trainer(
        "trl.experimental.gkd:GKDConfig",
        None,
        _NONE + " (generalised knowledge distillation)",
        {"nll": None, "dft": None},
    ),
    "gold": Trainer(
        "trl.experimental.gold:GOLDConfig",
        None,
        _NONE + " (cross-tokenizer distillation)",
        {"nll": None, "dft": None},
    ),
    "a2po": Trainer("trl.experimental.a2po:A2POConfig", None, _NONE),
    "gmpo": Trainer(
        "trl.experimental.gmpo:GMPOConfig",
        None,
        _NONE + " (geometric-mean policy optimisation)",
        dict.fromkeys(("grpo", "dapo", "bnpo", "dr_grpo", "cispo", "sapo", "luspo", "vespo")),
    ),
    "sdft": Trainer("trl.experimental.sdft:SDFTConfig", None, _NONE),
    "sdpo": Trainer(
        "trl.experimental.sdpo:SDPOConfig",
        None,
        _NONE,
        {"grpo": None, "dapo": None, "bnpo": None, "dr_grpo": None},
    ),
    "iw_opd": Trainer("trl.experimental.iw_opd:IWOPDConfig", None, _NONE),
    "async_grpo": Trainer("trl.experimental.async_grpo:AsyncGRPOConfig", "grpo", _ONLINE + " (synchronous)"),
    "async_distillation": Trainer("trl.experimental.async_distillation:AsyncDistillationConfig", None, _NONE),
    "server_distillation": Trainer(
        "trl.experimental.server_distillation:ServerDistillationConfig", None, _NONE
    ),
}

# Objective parameters that TRL's loss types read from a shared field (DPO's label_smoothing is cDPO's
# ε for sigmoid, EXO's ε, robust DPO's ε).
LABEL_SMOOTHING_AS: dict[str, str] = {
    "dpo": "cdpo",
    "exo": "exo",
    "rdpo": "rdpo",
    "cpo": "cpo",
    "simpo": "simpo",
}


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    return float(value)


def _bool(value: str) -> bool:
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
    "trust_remote_code": Argument("model.trust_remote_code", _bool),
    "gradient_checkpointing": Argument("model.gradient_checkpointing", _bool),
    "lora_r": Argument("model.lora.r", _int),
    "lora_alpha": Argument("model.lora.alpha", _int),
    "lora_dropout": Argument("model.lora.dropout", _float),
    "lora_target_modules": Argument("model.lora.target_modules", _target_modules),
    "load_in_4bit": Argument("model.lora.load_in_4bit", _bool),
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
    "torch_compile": Argument("train.compile", _bool),
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
}

_WORLD_ENV = ("WORLD_SIZE", "ACCELERATE_NUM_PROCESSES")


def _processes() -> int:
    for name in _WORLD_ENV:
        if os.environ.get(name, "").isdigit():
            return max(1, int(os.environ[name]))
    return 1


@dataclass
class Translation:
    """What a TRL command line means for alignlab: config keys with their values, and notes to print."""

    settings: list[tuple[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def overrides(self) -> list[str]:
        """As ``--set key=value`` texts (values in JSON, which YAML reads back unchanged)."""
        return [f"{key}={json.dumps(value)}" for key, value in self.settings]


_BOOLEAN = {name for name, argument in ARGUMENTS.items() if argument.convert is _bool} | {
    "bf16", "fp16", "use_peft", "push_to_hub", "do_train", "do_eval",
    "use_liger_kernel", "padding_free", "precompute_ref_log_probs",
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


def objectives_for(trainer: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The alignlab objectives a TRL ``trainer`` with ``loss_type``/``beta``/... stands for."""
    spec = TRAINERS[trainer]
    if spec.objective is None:
        raise TrlArgumentError(f"TRL's {trainer} trainer: {spec.note}")
    raw_types = args.get("loss_type")
    if raw_types is None or raw_types == "":
        types = [next(iter(spec.loss_types), None)] if spec.loss_types else [None]
    elif isinstance(raw_types, list):
        types = [str(t) for t in raw_types]
    else:
        types = [t.strip().strip("[]'\" ") for t in str(raw_types).split(",") if t.strip().strip("[]'\" ")]
    weights = args.get("loss_weights")
    if isinstance(weights, str):
        weights = [float(w.strip().strip("[]")) for w in weights.split(",") if w.strip().strip("[]")]
    objectives = []
    for i, loss_type in enumerate(types):
        if loss_type is None:
            name = spec.objective
        elif loss_type not in spec.loss_types:
            known = ", ".join(spec.loss_types)
            raise TrlArgumentError(f"TRL {trainer} loss_type {loss_type!r} is not one of TRL's: {known}")
        else:
            name = spec.loss_types[loss_type]
            if name is None:
                raise TrlArgumentError(f"TRL {trainer} loss_type {loss_type!r}: {_NONE}")
        entry: dict[str, Any] = {"name": name}
        accepted = objective_params(name)
        for trl_name, param in spec.params.items():
            if trl_name in args and _param_for(name, param) in accepted:
                entry[_param_for(name, param)] = float(args[trl_name])
        smoothing = float(args.get("label_smoothing", 0) or 0)
        if smoothing and name in LABEL_SMOOTHING_AS:
            entry["name"] = LABEL_SMOOTHING_AS[name]
            entry["epsilon" if entry["name"] in ("cdpo", "exo", "rdpo") else "label_smoothing"] = smoothing
        if trainer == "cpo" and name == "simpo" and "cpo_alpha" in entry:
            entry["sft_weight"] = entry.pop("cpo_alpha")
        if weights:
            entry["weight"] = float(weights[i])
        objectives.append(entry)
    return objectives


def objective_params(name: str) -> set[str]:
    """The parameters alignlab's objective ``name`` takes (from the registry)."""
    from alignlab.objectives import get

    return set(get(name).describe()["params"])


def _param_for(objective: str, param: str) -> str:
    return "tau" if objective == "ipo" and param == "beta" else param  # TRL's IPO beta is τ


def translate(args: Mapping[str, str], trainer: str | None = None) -> Translation:
    """alignlab settings for TRL arguments ``args`` (names as TRL spells them). ``trainer`` (dpo, kto, ...)
    decides the objective; without it (``alignlab train --loss_type ...``) the objective is set only when
    ``loss_type`` or ``beta`` is given, as DPO's."""
    result = Translation()
    unknown = [a for a in args if a not in ARGUMENTS and a not in SPECIAL and a not in IGNORED]
    if unknown:
        raise TrlArgumentError(
            f"unknown TRL argument(s) {', '.join('--' + a for a in unknown)}: see docs/from_trl.md for the "
            "arguments alignlab takes, or set the alignlab key with --set"
        )
    for name, value in args.items():
        if name in ARGUMENTS:
            argument = ARGUMENTS[name]
            try:
                result.settings.append((argument.key, argument.convert(value)))
            except (TrlArgumentError, ValueError) as err:
                raise TrlArgumentError(f"--{name} {value}: {err}") from None
        elif name in IGNORED:
            result.notes.append(f"--{name} ignored: {IGNORED[name]}")
    per_device = args.get("per_device_train_batch_size")
    accumulation = args.get("gradient_accumulation_steps")
    if per_device is not None or accumulation is not None:
        micro = int(per_device or 8)  # TRL's default per-device batch is 8
        batch = micro * int(accumulation or 1) * _processes()
        result.settings += [("train.batch_size", batch), ("train.micro_batch_size", micro)]
    if "adam_beta1" in args or "adam_beta2" in args:
        result.settings.append(
            ("train.adam_betas", [float(args.get("adam_beta1", 0.9)), float(args.get("adam_beta2", 0.999))])
        )
    if _bool(args.get("bf16", "false")):
        result.settings.append(("train.mixed_precision", "bf16"))
    elif _bool(args.get("fp16", "false")):
        result.settings.append(("train.mixed_precision", "fp16"))
    lora_given = any(key.startswith("model.lora.") for key, _ in result.settings)
    if _bool(args.get("use_peft", "false")) and not lora_given:
        result.settings.append(("model.lora", {}))
    elif lora_given and not _bool(args.get("use_peft", "false")):
        result.settings = [(k, v) for k, v in result.settings if not k.startswith("model.lora.")]
        result.notes.append("lora_* arguments ignored without --use_peft (as TRL does)")
    if "warmup_steps" in args:
        warmup = float(args["warmup_steps"])
        if 0 < warmup < 1:  # a ratio of the run's steps
            if "max_steps" not in args:
                raise TrlArgumentError(
                    "--warmup_steps as a ratio needs --max_steps here; or give whole steps"
                )
            warmup = warmup * int(args["max_steps"])
        result.settings.append(("train.warmup_steps", round(warmup)))
    objective_args = {"loss_type", "beta", "loss_weights", "label_smoothing"} | set(
        TRAINERS[trainer].params if trainer else ()
    )
    if trainer is not None or objective_args & set(args):
        result.settings.append(("objectives", objectives_for(trainer or "dpo", args)))
    return result


def markdown() -> str:
    """docs/from_trl.md."""
    lines = [
        "# Coming from TRL",
        "",
        "<!-- generated by `alignlab trl --markdown` from src/alignlab/cli/trl_map.py; "
        "tests/cli/test_trl_map.py checks it against TRL's own configs -->",
        "",
        "`alignlab train` takes TRL's common argument names as aliases, and `alignlab trl TRAINER` reads a "
        "whole TRL command line (or `--config trl.yaml`), prints the alignlab config it stands for and runs "
        "it (`--dry-run` only prints):",
        "",
        "```bash",
        "alignlab train --model_name_or_path builtin:smollm2-135m-instruct --dataset_name data.jsonl \\",
        "    --loss_type ipo --beta 0.2 --max_steps 100 --per_device_train_batch_size 2 \\",
        "    --gradient_accumulation_steps 4 --output_dir runs/ipo",
        "alignlab trl dpo --config trl_dpo.yaml --dry-run",
        "```",
        "",
        "Checkpoints are `<output_dir>/checkpoints/step-N/` (TRL: `checkpoint-N/`), each loadable by "
        "transformers; the final model is `<output_dir>/model/`.",
        "",
        "## Trainers",
        "",
        "| TRL trainer (config) | alignlab objective | note |",
        "|---|---|---|",
    ]
    for name, spec in TRAINERS.items():
        objective = f"`{spec.objective}`" if spec.objective else "—"
        lines.append(f"| {name} (`{spec.config}`) | {objective} | {spec.note} |")
    lines += ["", "## Loss types", "", "| TRL trainer | `loss_type` | alignlab objective |", "|---|---|---|"]
    for name, spec in TRAINERS.items():
        for loss_type, objective in spec.loss_types.items():
            shown = f"`{objective}`" if objective else f"— ({_NONE})"
            lines.append(f"| {name} | `{loss_type}` | {shown} |")
    lines += [
        "",
        "With `label_smoothing` > 0, DPO's `sigmoid` is `cdpo` (ε = label_smoothing), `exo_pair` and `robust` "
        "take it as their ε, and CPO/SimPO as their `label_smoothing`. TRL's IPO `beta` is alignlab's ipo `tau`.",
        "",
        "## Arguments",
        "",
        "| TRL argument | alignlab |",
        "|---|---|",
    ]
    for name, argument in ARGUMENTS.items():
        extra = f" ({argument.note})" if argument.note else ""
        lines.append(f"| `--{name}` | `{argument.key}`{extra} |")
    for name, text in SPECIAL.items():
        lines.append(f"| `--{name}` | {text} |")
    for name, text in IGNORED.items():
        lines.append(f"| `--{name}` | ignored: {text} |")
    lines += [
        "",
        "Any other alignlab key: `--set KEY=VALUE` (docs/config.md). A TRL argument not listed here is an "
        "error that names it, never silently dropped.",
        "",
    ]
    return "\n".join(lines)
