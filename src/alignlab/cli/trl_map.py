"""TRL's names in alignlab's terms: every TRL trainer, every loss type and the common arguments.

``alignlab train`` accepts the arguments of :data:`ARGUMENTS` as aliases (``--model_name_or_path``,
``--max_steps``, ...), and ``alignlab trl TRAINER ...`` reads a whole TRL command line or YAML file
(``cli/trl.py``). The tables live by job: the arguments in ``trl_arguments.py``, the trainers and loss
types in ``trl_trainers.py``; this module reads a command line with them (:func:`translate`) and writes
docs/from_trl.md (:func:`markdown`), and re-exports their names, so ``from alignlab.cli.trl_map import ...``
works for all of them. tests/cli/test_trl_map.py reads TRL's own config classes and trainer sources
(TRL 1.16) and fails when a trainer, a loss type or an argument here is unknown to TRL, or one of TRL's is
missing here.

The batch: TRL's effective batch is ``per_device_train_batch_size × gradient_accumulation_steps ×
processes``; alignlab's ``train.batch_size`` is that global batch and ``train.micro_batch_size`` the
per-process forward pass (alignlab's loss does not depend on how the batch is cut).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alignlab.cli.trl_arguments import (
    ARGUMENTS,
    IGNORED,
    SPECIAL,
    Argument,
    TrlArgumentError,
    parse_argv,
    read_bool,
    takes_value,
)
from alignlab.cli.trl_defaults import defaults_markdown, trl_defaults
from alignlab.cli.trl_trainers import (
    LABEL_SMOOTHING_AS,
    NO_EQUIVALENT,
    TRAINERS,
    Trainer,
    objective_params,
    objectives_for,
)

__all__ = [
    "ARGUMENTS",
    "IGNORED",
    "LABEL_SMOOTHING_AS",
    "SPECIAL",
    "TRAINERS",
    "Argument",
    "Trainer",
    "Translation",
    "TrlArgumentError",
    "markdown",
    "objective_params",
    "objectives_for",
    "parse_argv",
    "takes_value",
    "translate",
    "translate_trl",
]


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
    header: str = ""  # YAML comments printed above the config: which values are TRL's defaults

    def overrides(self) -> list[str]:
        """As ``--set key=value`` texts (values in JSON, which YAML reads back unchanged)."""
        return [f"{key}={json.dumps(value)}" for key, value in self.settings]


def translate(args: Mapping[str, str], trainer: str | None = None) -> Translation:
    """alignlab settings for TRL arguments ``args`` (names as TRL spells them). ``trainer`` (dpo, kto, ...)
    decides the objective; without it (``alignlab train --loss_type ...``) the objective is set only when
    ``loss_type`` or ``beta`` is given, as DPO's."""
    result = Translation()
    known = (
        ARGUMENTS.keys() | SPECIAL.keys() | IGNORED.keys() | set(TRAINERS[trainer].params if trainer else ())
    )
    unknown = [a for a in args if a not in known]
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
    bf16 = read_bool(args["bf16"]) if "bf16" in args else None
    if bf16:
        result.settings.append(("train.mixed_precision", "bf16"))
    elif read_bool(args.get("fp16", "false")):
        result.settings.append(("train.mixed_precision", "fp16"))
    elif bf16 is False:  # --bf16 false without --fp16: TRL trains in float32
        result.settings.append(("train.mixed_precision", "no"))
    lora_given = any(key.startswith("model.lora.") for key, _ in result.settings)
    if read_bool(args.get("use_peft", "false")) and not lora_given:
        result.settings.append(("model.lora", {}))
    elif lora_given and not read_bool(args.get("use_peft", "false")):
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


def translate_trl(given: Mapping[str, Any], trainer: str) -> Translation:
    """``alignlab trl TRAINER``: the arguments ``given`` with TRL 1.16's defaults for ``trainer`` filled in
    where absent (trl_defaults.py), as alignlab settings; ``header`` says which values are TRL's defaults
    and which of those alignlab cannot match exactly."""
    filled = trl_defaults(trainer, given)
    result = translate(filled.args, trainer)
    result.settings += filled.settings
    result.header = filled.comment(trainer)
    return result


def markdown() -> str:
    """docs/from_trl.md."""
    lines = [
        "# Coming from TRL",
        "",
        "<!-- generated by `alignlab trl --markdown` from src/alignlab/cli/trl_map.py (with trl_arguments.py, "
        "trl_trainers.py, trl_defaults.py); tests/cli/test_trl_map.py and test_trl_defaults.py check it "
        "against TRL's own configs -->",
        "",
        "`alignlab train` takes TRL's common argument names as aliases, and `alignlab trl TRAINER` reads a "
        "whole TRL command line (or `--config trl.yaml`), prints the alignlab config it stands for and runs "
        "it (`--dry-run` only prints; `--set KEY=VALUE` sets an alignlab key TRL has no argument for, such as "
        "`data.on_error=skip`). `alignlab trl` starts from TRL's defaults for that trainer "
        "([below](#trls-defaults)), so the same command line means TRL's run; `alignlab train` starts from "
        "alignlab's defaults (docs/config.md) and sets only the TRL arguments given:",
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
            shown = f"`{objective}`" if objective else f"— ({NO_EQUIVALENT})"
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
    lines += defaults_markdown()
    lines += [
        "",
        "Any other alignlab key: `--set KEY=VALUE` (docs/config.md). A TRL argument not listed here is an "
        "error that names it, never silently dropped.",
        "",
    ]
    return "\n".join(lines)
