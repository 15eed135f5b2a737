"""``alignlab trl TRAINER`` starts from TRL 1.16's defaults (cli/trl_defaults.py), not alignlab's.

With trl installed, the table is compared with TRL's own config classes, instantiated without arguments
(``use_cpu=True`` only, so that TRL's bf16 default can be instantiated on a machine without bf16), so it
cannot drift silently. Without trl, the printed config of minimal command lines is compared with values
written here by hand from TRL's documented defaults.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import os

import pytest
import yaml

from alignlab.cli.trl import run_trl
from alignlab.cli.trl_arguments import ARGUMENTS, SPECIAL
from alignlab.cli.trl_defaults import CONFIG_CLASSES, defaults_for
from alignlab.cli.trl_trainers import TRAINERS

# Mapped TRL fields the table leaves out on purpose: the user's inputs, and defaults that alignlab's own
# default already matches (data.split null reads "train"; model.revision null is the default branch; no
# LoRA, no 4-bit, no remote code; every objective weight 1; no run name; no evaluation).
NOT_IN_TABLE = {
    "model_name_or_path", "dataset_name", "dataset_train_split", "model_revision", "trust_remote_code",
    "use_peft", "load_in_4bit", "loss_weights", "run_name", "eval_steps",
}  # fmt: skip


def _trl_value(value):
    if isinstance(value, enum.Enum):
        return value.value
    if value == []:  # report_to "none" becomes [] in TrainingArguments.__post_init__
        return "none"
    return value


@pytest.mark.parametrize("trainer", sorted(CONFIG_CLASSES))
def test_the_table_is_trls_defaults(trainer):
    trl = pytest.importorskip("trl")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    module, name = CONFIG_CLASSES[trainer].split(":")
    assert TRAINERS[trainer].config == CONFIG_CLASSES[trainer]
    cls = getattr(importlib.import_module(module), name)
    config, model_config = cls(use_cpu=True), trl.ModelConfig()
    fields = {f.name for f in dataclasses.fields(cls)}
    model_fields = {f.name for f in dataclasses.fields(trl.ModelConfig)}
    table = defaults_for(trainer)
    for field, default in table.items():
        assert field in fields | model_fields, field
        source = config if field in fields else model_config
        assert _trl_value(getattr(source, field)) == default.value, field
    mapped = (set(ARGUMENTS) | set(SPECIAL) | set(TRAINERS[trainer].params)) & (fields | model_fields)
    assert mapped - NOT_IN_TABLE <= set(table), mapped - NOT_IN_TABLE - set(table)


def _printed(capsys, monkeypatch, trainer, *argv):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("ACCELERATE_NUM_PROCESSES", raising=False)
    run_trl(trainer, None, True, ["--model_name_or_path", "tiny:llama", "--dataset_name", "d.jsonl", *argv])
    out = capsys.readouterr().out
    return yaml.safe_load(out), out


def test_a_minimal_dpo_command_line_is_trls_run(capsys, monkeypatch):
    config, out = _printed(capsys, monkeypatch, "dpo")
    train = config["train"]
    # TRL 1.16 DPOConfig: lr 1e-6, linear, 3 epochs, 8 per device × 1, seed 42, log every 10, save every 500
    assert train["learning_rate"] == 1e-6 and train["schedule"] == "linear" and train["warmup_steps"] == 0
    assert train["epochs"] == 3.0 and train["steps"] is None
    assert train["batch_size"] == 8 and train["micro_batch_size"] == 8
    assert train["seed"] == 42 and train["log_every"] == 10 and train["save_every"] == 500
    assert (
        train["adam_betas"] == [0.9, 0.999] and train["weight_decay"] == 0.0 and train["max_grad_norm"] == 1.0
    )
    assert train["mixed_precision"] == "auto" and train["tracker"] == "none" and train["compile"] is False
    assert config["out"] == "trainer_output"
    assert config["model"]["gradient_checkpointing"] is True and config["model"]["dtype"] == "float32"
    assert config["model"]["lora"] is None
    assert config["data"]["max_length"] == 1024 and config["data"]["max_prompt_length"] == 1024
    assert config["objectives"] == [{"name": "dpo", "beta": 0.1}]
    header = out.split("\nname:")[0]
    assert "#   learning_rate: 1e-06 -> train.learning_rate" in header
    assert "#   lr_scheduler_type: linear -> train.schedule" in header
    assert "model_name_or_path" not in header and "dataset_name" not in header  # given, not defaults
    differs = header.split("without a faithful alignlab equivalent")[1]
    for name in ("disable_dropout: true", "save_total_limit: null", "bf16: true", "seed: 42"):
        assert f"#   {name} ->" in differs, name


def test_given_arguments_win_and_are_not_listed_as_defaults(capsys, monkeypatch):
    config, out = _printed(
        capsys, monkeypatch, "dpo", "--learning_rate", "5e-7", "--lr_scheduler_type", "cosine",
        "--bf16", "false", "--save_strategy", "no", "--max_length", "256",
    )  # fmt: skip
    assert config["train"]["learning_rate"] == 5e-7 and config["train"]["schedule"] == "cosine"
    assert config["train"]["mixed_precision"] == "no"  # --bf16 false: TRL trains in float32
    assert config["train"]["save_every"] == 0  # save_strategy no: TRL saves no checkpoints
    assert config["data"]["max_length"] == 256 and config["data"]["max_prompt_length"] == 256
    header = out.split("\nname:")[0]
    for name in ("learning_rate", "lr_scheduler_type", "bf16", "save_steps", "max_length:"):
        assert f"#   {name}" not in header, name
    assert config["train"]["epochs"] == 3.0  # the others still TRL's


@pytest.mark.parametrize(
    ("trainer", "argv", "learning_rate", "objectives"),
    [
        ("kto", [], 1e-6, [{"name": "kto", "beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0}]),
        ("orpo", [], 1e-6, [{"name": "orpo", "beta": 0.1}]),
        ("cpo", [], 1e-6, [{"name": "cpo", "beta": 0.1, "cpo_alpha": 1.0, "label_smoothing": 0.0}]),
        # CPO's SimPO: β·(Δ − simpo_gamma/β) with β 0.1, γ 0.5 → gamma_beta_ratio 5; cpo_alpha 1 → sft_weight 1
        (
            "cpo",
            ["--loss_type", "simpo"],
            1e-6,
            [
                {
                    "name": "simpo",
                    "beta": 0.1,
                    "label_smoothing": 0.0,
                    "gamma_beta_ratio": 5.0,
                    "sft_weight": 1.0,
                }
            ],
        ),
        ("reward", [], 1e-4, [{"name": "bt"}]),
        ("sft", [], 2e-5, [{"name": "sft"}]),
    ],
)
def test_each_trainer_starts_from_its_own_defaults(
    capsys, monkeypatch, trainer, argv, learning_rate, objectives
):
    config, _ = _printed(capsys, monkeypatch, trainer, *argv)
    assert config["train"]["learning_rate"] == learning_rate and config["objectives"] == objectives
    assert config["train"]["schedule"] == "linear" and config["train"]["epochs"] == 3.0
    assert config["data"]["truncate_completion"] == ("drop" if trainer == "reward" else "keep_start")


def test_fp16_turns_trls_bf16_default_off(capsys, monkeypatch):
    config, out = _printed(capsys, monkeypatch, "dpo", "--fp16")
    assert config["train"]["mixed_precision"] == "fp16" and "#   bf16:" not in out


def test_peft_takes_trls_lora_defaults(capsys, monkeypatch):
    config, out = _printed(capsys, monkeypatch, "dpo", "--use_peft")
    assert config["model"]["lora"] == {
        "r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear", "load_in_4bit": False,
    }  # fmt: skip
    assert "#   lora_target_modules: null -> model.lora.target_modules: all-linear;" in out
