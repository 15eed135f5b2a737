"""TRL 1.16's defaults for the trainers ``alignlab trl`` runs, and what each becomes in alignlab.

A TRL command line leaves most arguments to TRL's defaults, which are not alignlab's (TRL: linear schedule,
DPO learning rate 1e-6, per-device batch 8, 3 epochs, seed 42, gradient checkpointing on, ...). ``alignlab
trl TRAINER`` therefore starts from this table: :func:`trl_defaults` fills in every argument the user did not
give, and the printed config lists which values came from here and which have no faithful alignlab
equivalent.

Read from TRL 1.16.0's source (huggingface/trl at v1.16.0, the version installed for the tests):
``trl/trainer/base_config.py`` (``_BaseConfig``: logging_steps 10, gradient_checkpointing True, bf16 None,
which ``__post_init__`` makes ``not fp16``), ``trl/trainer/{dpo,kto,reward,sft}_config.py``,
``trl/experimental/{orpo,cpo}/{orpo,cpo}_config.py`` and ``trl/trainer/model_config.py`` (``ModelConfig``:
dtype, LoRA); the fields TRL does not override are transformers' ``TrainingArguments``
(``transformers/training_args.py``). trl is not a dependency, so this is a static table;
tests/cli/test_trl_defaults.py instantiates those classes (with trl installed) and fails when a value here
differs from theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRL_VERSION = "1.16.0"


@dataclass(frozen=True)
class Default:
    """One TRL default: its value as TRL's config holds it after ``__post_init__``, what it becomes in
    alignlab, and, where alignlab cannot do the same, what it does instead (``differs``).
    ``as_argument``: the value is read like a command-line argument (``trl_map.translate``); otherwise it
    only explains an alignlab setting that already behaves as TRL's default does, or cannot."""

    value: Any
    becomes: str
    differs: str = ""
    as_argument: bool = True


_NO_DROPOUT = Default(
    True,
    "nothing",
    "alignlab has no such setting: the model trains with the dropout its config sets "
    "(0.0 for Llama, Qwen2 and SmolLM2 configs; 0.1 for GPT-2)",
    as_argument=False,
)

# transformers.TrainingArguments fields (with _BaseConfig's overrides) and trl.ModelConfig's, as every one
# of the six trainers has them.
COMMON: dict[str, Default] = {
    "output_dir": Default("trainer_output", "out"),  # None, which TrainingArguments makes "trainer_output"
    "num_train_epochs": Default(3.0, "train.epochs"),
    "max_steps": Default(-1, "train.steps: null (the epochs decide)", as_argument=False),
    "per_device_train_batch_size": Default(
        8, "train.micro_batch_size; train.batch_size = it × gradient_accumulation_steps × processes"
    ),
    "gradient_accumulation_steps": Default(1, "train.batch_size (with per_device_train_batch_size)"),
    "lr_scheduler_type": Default("linear", "train.schedule"),
    "warmup_steps": Default(0, "train.warmup_steps"),
    "weight_decay": Default(0.0, "train.weight_decay"),
    "max_grad_norm": Default(1.0, "train.max_grad_norm"),
    "adam_beta1": Default(0.9, "train.adam_betas[0]"),
    "adam_beta2": Default(0.999, "train.adam_betas[1]"),
    "adam_epsilon": Default(1e-8, "AdamW's eps (alignlab's is torch's default, 1e-8)", as_argument=False),
    "optim": Default(
        "adamw_torch_fused", "alignlab's AdamW (torch.optim.AdamW, the same update)", as_argument=False
    ),
    "seed": Default(
        42, "train.seed", "the same number, but alignlab's random streams (data order) are not TRL's"
    ),
    "logging_steps": Default(10, "train.log_every"),
    "save_strategy": Default("steps", "with save_steps: train.save_every", as_argument=False),
    "save_steps": Default(500, "train.save_every"),
    "save_total_limit": Default(
        None,
        "nothing",
        "TRL keeps every checkpoint; alignlab keeps the last train.keep_checkpoints (2): "
        "--set train.keep_checkpoints=N for more",
        as_argument=False,
    ),
    "eval_strategy": Default("no", "train.eval_every: 0 (alignlab's default)", as_argument=False),
    "report_to": Default("none", "train.tracker"),
    "torch_compile": Default(False, "train.compile"),
    "gradient_checkpointing": Default(True, "model.gradient_checkpointing"),
    "bf16": Default(
        True,
        "train.mixed_precision: auto",
        "bf16 where the device supports it, as TRL; where it does not, TRL refuses to start and alignlab "
        "trains in float32",
        as_argument=False,
    ),
    "fp16": Default(False, "(bf16 decides)", as_argument=False),
    "dtype": Default("float32", "model.dtype"),  # trl.ModelConfig
}

# trl.ModelConfig's LoRA fields: used only with --use_peft (as TRL does).
LORA: dict[str, Default] = {
    "lora_r": Default(16, "model.lora.r"),
    "lora_alpha": Default(32, "model.lora.alpha"),
    "lora_dropout": Default(0.05, "model.lora.dropout"),
    "lora_target_modules": Default(
        None,
        "model.lora.target_modules: all-linear",
        "TRL lets peft choose per architecture (q_proj and v_proj for Llama), alignlab adapts every "
        "linear layer: name them with --lora_target_modules to match",
        as_argument=False,
    ),
}

_TRUNCATION_KEEPS = (
    "TRL keeps a record whose prompt alone fills max_length (with an empty completion); alignlab drops it "
    "and counts it in the tokenisation report"
)

# Each trainer's own fields (its config class overrides or adds them).
TRAINER_DEFAULTS: dict[str, dict[str, Default]] = {
    "dpo": {
        "learning_rate": Default(1e-6, "train.learning_rate"),
        "max_length": Default(1024, "data.max_length"),
        "loss_type": Default(["sigmoid"], "objectives: dpo"),
        "beta": Default(0.1, "the objective's beta (ipo's tau)"),
        "label_smoothing": Default(0.0, "cdpo/exo/rdpo's epsilon (0: plain dpo)"),
        "discopop_tau": Default(0.05, "discopop's tau (loss_type discopop)"),
        "disable_dropout": _NO_DROPOUT,
    },
    "kto": {
        "learning_rate": Default(1e-6, "train.learning_rate"),
        "max_length": Default(1024, "data.max_length", _TRUNCATION_KEEPS),
        "loss_type": Default("kto", "objectives: kto"),
        "beta": Default(0.1, "kto's beta"),
        "desirable_weight": Default(1.0, "kto's desirable_weight"),
        "undesirable_weight": Default(1.0, "kto's undesirable_weight"),
        "disable_dropout": _NO_DROPOUT,
    },
    "reward": {
        "learning_rate": Default(1e-4, "train.learning_rate"),
        "max_length": Default(1024, "data.max_length"),
        "center_rewards_coefficient": Default(None, "bt's center_coef: 0 (none)", as_argument=False),
        "disable_dropout": _NO_DROPOUT,
    },
    "sft": {
        "learning_rate": Default(2e-5, "train.learning_rate"),
        "max_length": Default(1024, "data.max_length", _TRUNCATION_KEEPS),
        "loss_type": Default("nll", "objectives: sft"),
        "completion_only_loss": Default(
            None, "sft's prompt_loss_weight: 0 (the loss on completions only)", as_argument=False
        ),
    },
    "orpo": {
        "learning_rate": Default(1e-6, "train.learning_rate"),
        "max_length": Default(1024, "data.max_length", _TRUNCATION_KEEPS),
        "beta": Default(0.1, "orpo's beta (the odds-ratio weight λ)"),
        "disable_dropout": _NO_DROPOUT,
    },
    "cpo": {
        "learning_rate": Default(1e-6, "train.learning_rate"),
        "max_length": Default(1024, "data.max_length", _TRUNCATION_KEEPS),
        "loss_type": Default("sigmoid", "objectives: cpo"),
        "beta": Default(0.1, "cpo's (or simpo's) beta"),
        "label_smoothing": Default(0.0, "cpo's (or simpo's) label_smoothing"),
        "cpo_alpha": Default(1.0, "cpo's cpo_alpha (simpo: sft_weight)"),
        "simpo_gamma": Default(0.5, "simpo's gamma_beta_ratio = simpo_gamma / beta (loss_type simpo)"),
        "disable_dropout": _NO_DROPOUT,
    },
}

CONFIG_CLASSES: dict[str, str] = {
    "dpo": "trl:DPOConfig",
    "kto": "trl:KTOConfig",
    "reward": "trl:RewardConfig",
    "sft": "trl:SFTConfig",
    "orpo": "trl.experimental.orpo:ORPOConfig",
    "cpo": "trl.experimental.cpo:CPOConfig",
}


def defaults_for(trainer: str) -> dict[str, Default]:
    """Every TRL default of ``trainer`` in this table (common, LoRA and its own fields)."""
    return {**COMMON, **LORA, **TRAINER_DEFAULTS[trainer]}


@dataclass
class FilledIn:
    """A TRL command line with TRL's defaults filled in: the arguments, and what was filled in."""

    args: dict[str, Any]
    used: dict[str, Default] = field(default_factory=dict)  # faithful defaults that were not given
    differs: dict[str, Default] = field(default_factory=dict)  # defaults alignlab cannot match exactly
    settings: list[tuple[str, Any]] = field(default_factory=list)  # alignlab keys set beside ``args``
    derived: list[str] = field(default_factory=list)  # why each of ``settings`` is set

    def comment(self, trainer: str) -> str:
        """The lines printed above the alignlab config (YAML comments)."""
        config = CONFIG_CLASSES[trainer].split(":")[1]
        lines = [f"# TRL {TRL_VERSION} {trainer} ({config}) as an alignlab config."]
        if self.used:
            lines.append(f"# From TRL's {config} defaults (arguments not given), as alignlab:")
            lines += [f"#   {name}: {_shown(d.value)} -> {d.becomes}" for name, d in self.used.items()]
        if self.derived:
            lines.append("# Set to behave as TRL (no TRL argument names them):")
            lines += [f"#   {text}" for text in self.derived]
        if self.differs:
            lines.append(
                "# TRL defaults without a faithful alignlab equivalent (what alignlab does instead):"
            )
            for name, d in self.differs.items():
                becomes = "" if d.becomes == "nothing" else f"{d.becomes}; "
                lines.append(f"#   {name}: {_shown(d.value)} -> {becomes}{d.differs}")
        return "\n".join(lines)


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def trl_defaults(trainer: str, given: Mapping[str, Any]) -> FilledIn:
    """``given`` (a TRL command line, names as TRL spells them) with TRL 1.16's defaults for ``trainer``
    filled in where an argument is absent; LoRA defaults only with ``use_peft``."""
    from alignlab.cli.trl_arguments import read_bool

    table = {**COMMON, **TRAINER_DEFAULTS[trainer]}
    if read_bool(str(given.get("use_peft", "false"))):
        table |= LORA
    if read_bool(str(given.get("fp16", "false"))):
        table.pop("bf16")  # TRL's bf16 default is `not fp16`: off, and --fp16 sets the precision
    if str(given.get("save_strategy", "steps")) != "steps":
        table.pop("save_steps")  # TRL saves every save_steps only with save_strategy steps
    filled = FilledIn(args=dict(given))
    for name, default in table.items():
        if name in given:
            continue
        if default.differs:
            filled.differs[name] = default
        elif name not in ("fp16",):
            filled.used[name] = default
        if default.as_argument:
            filled.args[name] = default.value
    if "bf16" not in given and not read_bool(str(given.get("fp16", "false"))):
        filled.settings.append(("train.mixed_precision", "auto"))
    if "max_prompt_length" not in given:  # TRL's six trainers limit prompt and completion only together
        max_length = int(filled.args["max_length"])
        filled.settings.append(("data.max_prompt_length", max_length))
        filled.derived.append(
            f"data.max_prompt_length: {max_length} (= max_length: TRL limits prompt + completion together "
            "and never cuts a prompt alone)"
        )
    if trainer == "reward":
        filled.settings.append(("data.truncate_completion", "drop"))
        filled.derived.append("data.truncate_completion: drop (TRL's reward trainer drops longer pairs)")
    return filled


def defaults_markdown() -> list[str]:
    """The "TRL's defaults" section of docs/from_trl.md: each default per trainer and what it becomes."""
    trainers = list(CONFIG_CLASSES)
    names = list(COMMON) + [n for t in trainers for n in TRAINER_DEFAULTS[t] if n not in COMMON]
    names = list(dict.fromkeys(names)) + list(LORA)
    lines = [
        "",
        "## TRL's defaults",
        "",
        f"`alignlab trl TRAINER` fills in every argument not given with TRL {TRL_VERSION}'s default for that "
        "trainer's config class, and the printed config lists them as comments: those alignlab matches, and "
        "those it cannot match exactly, with what it does instead. TRL limits prompt and completion only "
        "together, so `data.max_prompt_length` is set to `max_length` (unless `--max_prompt_length` is given); "
        "for `reward`, `data.truncate_completion: drop` (TRL's reward trainer drops longer pairs). The LoRA "
        "defaults apply with `--use_peft`.",
        "",
        "| TRL argument | " + " | ".join(trainers) + " | alignlab |",
        "|---|" + "---|" * len(trainers) + "---|",
    ]
    for name in names:
        per = [defaults_for(t).get(name) for t in trainers]
        shown = [f"`{_shown(d.value)}`" if d is not None else "—" for d in per]
        becomes = dict.fromkeys(d.becomes for d in per if d is not None and d.becomes != "nothing")
        what = " / ".join(becomes)
        differs: dict[str, list[str]] = {}
        for trainer, d in zip(trainers, per):
            if d is not None and d.differs:
                differs.setdefault(d.differs, []).append(trainer)
        for text, where in differs.items():
            scope = "" if len(where) == sum(d is not None for d in per) else f" ({', '.join(where)})"
            what += ("; " if what else "") + f"**not exactly{scope}:** {text}"
        lines.append(f"| `{name}` | " + " | ".join(shown) + f" | {what} |")
    return lines
