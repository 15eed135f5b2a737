"""TRL's names in alignlab's terms (cli/trl_map.py), checked against TRL 1.16 itself: its config classes
and trainer sources are read here, so a trainer, loss type or argument that TRL adds or renames fails a
test instead of leaving docs/from_trl.md stale; TRL's own parser reads the same command lines."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

from alignlab.cli.trl_map import ARGUMENTS, IGNORED, SPECIAL, TRAINERS, markdown, parse_argv, translate
from alignlab.objectives import all_specs
from tests.train._runs import REPO, run_cli

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # we import trl.experimental on purpose
trl = pytest.importorskip("trl")

HELPERS = {"ModelConfig", "DatasetMixtureConfig", "PeftConfig", "MergeConfig"}


def trl_trainer_configs() -> dict[str, type]:
    """Every trainer config TRL exports: ``trl:Name`` and ``trl.experimental.<pkg>:Name``."""
    found = {f"trl:{n}": getattr(trl, n) for n in dir(trl) if n.endswith("Config") and n not in HELPERS}
    import trl.experimental as experimental

    for info in pkgutil.iter_modules(experimental.__path__):
        try:
            module = importlib.import_module(f"trl.experimental.{info.name}")
        except Exception:  # an experimental trainer whose optional dependency is absent
            continue
        for n in dir(module):
            if n.endswith("Config") and not n.startswith("_") and n not in HELPERS:
                if dataclasses.is_dataclass(getattr(module, n)):
                    found[f"trl.experimental.{info.name}:{n}"] = getattr(module, n)
    return found


def config_class(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def trl_loss_types(cls: type) -> set[str]:
    """The loss types TRL accepts for ``cls``: the values its ``loss_type`` help lists, and every
    ``loss_type == "x"`` / ``loss_type in (...)`` literal in its trainer's source."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if "loss_type" not in fields:
        return set()
    values: set[str] = set()
    help_text = fields["loss_type"].metadata.get("help", "")
    listed = re.search(r"values are:?(.*?)(?:\.\s|\.$|$)", help_text, re.S)
    if listed:
        values |= set(re.findall(r"'([A-Za-z0-9_\-]+)'", listed.group(1)))
    values |= set(fields["loss_type"].metadata.get("choices", []))  # e.g. SFT's deprecated chunked_nll
    source_dir = Path(inspect.getfile(cls)).parent
    module = cls.__module__.rsplit(".", 1)[-1]
    if cls.__module__.startswith("trl.trainer."):
        files = [source_dir / f"{module.removesuffix('_config')}_trainer.py"]
    else:
        files = sorted(source_dir.glob("*.py"))
    for file in files:
        text = file.read_text(encoding="utf-8")
        values |= set(re.findall(r"loss_type\s*[!=]=\s*[\"']([A-Za-z0-9_\-]+)[\"']", text))
        for group in re.findall(r"loss_type\s+(?:not\s+)?in\s*[\[({]([^\])}]*)[\])}]", text):
            values |= set(re.findall(r"[\"']([A-Za-z0-9_\-]+)[\"']", group))
    default = fields["loss_type"].default
    if isinstance(default, str):
        values.add(default)
    return values


def test_every_trl_trainer_is_mapped():
    assert {spec.config for spec in TRAINERS.values()} == set(trl_trainer_configs())


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trl_loss_type_is_mapped_and_none_is_invented(name):
    spec = TRAINERS[name]
    assert set(spec.loss_types) == trl_loss_types(config_class(spec.config))


def test_every_argument_is_one_of_trl():
    from transformers import TrainingArguments

    fields: set[str] = set()
    for cls in [TrainingArguments, trl.ModelConfig, trl.ScriptArguments] + list(
        trl_trainer_configs().values()
    ):
        fields |= {f.name for f in dataclasses.fields(cls)}
    for table in (ARGUMENTS, SPECIAL, IGNORED):
        assert set(table) <= fields, set(table) - fields
    for spec in TRAINERS.values():
        assert set(spec.params) <= {f.name for f in dataclasses.fields(config_class(spec.config))}


def test_every_target_is_an_alignlab_objective_with_that_parameter():
    registry = {s.name: set(s.describe()["params"]) for s in all_specs()}
    for spec in TRAINERS.values():
        targets = {spec.objective, *spec.loss_types.values()} - {None}
        assert targets <= set(registry), targets - set(registry)
        for param in spec.params.values():
            assert any(param in registry[t] or (param == "beta" and t == "ipo") for t in targets), param


def test_docs_from_trl_is_the_generated_map():
    assert (REPO / "docs" / "from_trl.md").read_text(encoding="utf-8") == markdown()


ARGV = [
    "--model_name_or_path", "tiny:llama", "--dataset_name", "pairs.jsonl", "--output_dir", "runs/x",
    "--loss_type", "ipo", "--beta", "0.2", "--per_device_train_batch_size", "2",
    "--gradient_accumulation_steps", "4", "--max_steps", "3", "--learning_rate", "5e-6",
    "--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "0.4", "--bf16", "false", "--seed", "7",
]  # fmt: skip


def test_a_trl_command_line_means_what_trl_parses_it_as():
    from trl import DPOConfig, ModelConfig, ScriptArguments, TrlParser

    script, dpo, model = TrlParser((ScriptArguments, DPOConfig, ModelConfig)).parse_args_and_config(ARGV)[:3]
    settings = dict(translate(parse_argv(ARGV), "dpo").settings)
    assert (
        settings["model.path"] == model.model_name_or_path and settings["data.train"] == script.dataset_name
    )
    assert settings["out"] == dpo.output_dir and settings["train.steps"] == dpo.max_steps
    assert settings["train.learning_rate"] == dpo.learning_rate and settings["train.seed"] == dpo.seed
    assert settings["train.batch_size"] == dpo.per_device_train_batch_size * dpo.gradient_accumulation_steps
    assert settings["train.micro_batch_size"] == dpo.per_device_train_batch_size
    assert settings["train.warmup_steps"] == round(dpo.warmup_steps * dpo.max_steps) == 1
    assert dpo.bf16 is False and dpo.fp16 is False and settings["train.mixed_precision"] == "no"  # float32
    assert dict(translate(parse_argv(["--bf16", "--seed", "3"])).settings) == {
        "train.mixed_precision": "bf16",
        "train.seed": 3,
    }  # a bare flag is true, and the next option is not taken as its value
    assert settings["train.schedule"] == dpo.lr_scheduler_type == "constant_with_warmup"
    assert settings["objectives"] == [{"name": "ipo", "tau": dpo.beta}] and dpo.loss_type == ["ipo"]


def test_several_loss_types_with_weights_and_label_smoothing():
    args = parse_argv(["--loss_type", "sigmoid,sft", "--loss_weights", "1.0,0.3", "--label_smoothing", "0.1"])
    assert translate(args, "dpo").settings[-1] == (
        "objectives",
        [{"name": "cdpo", "epsilon": 0.1, "weight": 1.0}, {"name": "sft", "weight": 0.3}],
    )


def test_unknown_or_unmatched_arguments_are_errors():
    result = run_cli(["trl", "dpo", "--dataset_name", "x", "--no_such_thing", "1", "--dry-run"])
    assert result.returncode == 1 and "--no_such_thing" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(["trl", "cpo", "--loss_type", "alphapo", "--dry-run"])
    assert result.returncode == 1 and "alphapo" in result.stderr and "no alignlab equivalent" in result.stderr


def test_trl_command_prints_the_alignlab_config(tmp_path):
    trl_yaml = tmp_path / "trl.yaml"
    trl_yaml.write_text("model_name_or_path: tiny:llama\nbeta: 0.5\nmax_steps: 9\n")
    result = run_cli(["trl", "kto", "--config", str(trl_yaml), "--max_steps", "4", "--dry-run"])
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert (
        printed["model"]["path"] == "tiny:llama" and printed["train"]["steps"] == 4
    )  # the command line wins
    assert printed["objectives"] == [
        {"name": "kto", "beta": 0.5, "desirable_weight": 1.0, "undesirable_weight": 1.0}
    ]  # the weights TRL's KTOConfig defaults to (tests/cli/test_trl_defaults.py)
    # an alignlab key TRL has no name for (the data errors advise it) and one that overrides a TRL argument
    sets = ["--set", "data.on_error=skip", "--set", "train.steps=2"]
    result = run_cli(["trl", "kto", "--config", str(trl_yaml), *sets, "--dry-run"])
    printed = yaml.safe_load(result.stdout)
    assert printed["data"]["on_error"] == "skip" and printed["train"]["steps"] == 2, result.stderr


def test_train_takes_trl_names_and_set_still_wins(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "Hi", "chosen": " hello", "rejected": " go"}\n' * 8)
    out = tmp_path / "run"
    result = run_cli(
        ["train", "--model_name_or_path", "tiny:llama", "--dataset_name", str(data), "--max_steps", "1",
         "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--beta", "0.3",
         "--output_dir", str(out), "--learning_rate", "1e-3", "--set", "train.learning_rate=2e-3",
         "--set", f"reference.cache_dir={tmp_path / 'cache'}", "--set", "train.progress=false"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model"]["path"] == "tiny:llama" and config["data"]["train"] == str(data)
    assert config["train"]["steps"] == 1 and config["train"]["batch_size"] == 4
    assert config["train"]["micro_batch_size"] == 2 and config["train"]["learning_rate"] == 2e-3
    assert config["objectives"] == [{"name": "dpo", "beta": 0.3}]
