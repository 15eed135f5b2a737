"""The command line as a newcomer meets it: fast start, help that says what is accepted, one-line errors
for a Hub id without network, and tests that keep out of the user's home."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train._runs import REPO, run_cli

STARTUP_PROBE = """
import sys
from alignlab.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "transformers", "sqlalchemy", "fastapi", "datasets") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["train", "--help"], ["cache", "--help"]])
def test_help_and_version_import_no_heavy_library(argv):
    # `--help`/`--version` used to import torch and the app (5 s on a busy 2-core machine): a command
    # group is imported only when it runs, and help needs none of torch, transformers or sqlalchemy.
    result = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE.format(argv=argv)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stderr or result.stderr.rstrip().endswith("HEAVY=")


def test_version_answers_before_the_command_line_library_loads():
    probe = STARTUP_PROBE.format(argv=["--version"]).replace('"datasets"', '"datasets", "typer", "rich"')
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    from importlib.metadata import version

    assert result.stdout == f"alignlab {version('alignlab')}\n"
    assert result.stderr.rstrip().endswith("HEAVY="), result.stderr


def test_every_group_is_listed_and_runs_its_own_help():
    listed = run_cli(["--help"], env={"COLUMNS": "200"})
    for group in ("models", "data", "judges", "rm", "cache", "sim", "app"):
        assert group in listed.stdout
    own = run_cli(["data", "--help"], env={"COLUMNS": "200"})
    assert own.returncode == 0 and "validate" in own.stdout and "convert" in own.stdout


def test_a_flag_shows_no_value_type_and_brackets_in_help_survive():
    # typer showed `--resume <bool>` although `--resume true` is refused; rich markup ate "[default: ...]".
    train_help = run_cli(["train", "--help"], env={"COLUMNS": "200"}).stdout
    resume = next(line for line in train_help.splitlines() if "--resume" in line)
    assert "<bool>" not in resume and "Continue the run" in resume
    assert "--set" in train_help and "<list[str]>" in train_help  # options that take values keep their type
    assert "docs/config.md" in train_help
    serve_help = run_cli(["app", "serve", "--help"], env={"COLUMNS": "300"}).stdout
    assert "postgresql://... [default: " in serve_help and "ALIGNLAB_DATA moves it]" in serve_help


@pytest.mark.parametrize(
    "override, what",
    [("model.path=HuggingFaceTB/SmolLM2-135M", "model.path"), ("data.train=Anthropic/hh-rlhf", "data")],
)
def test_a_hub_id_without_network_is_one_line_that_says_how_to_go_local(override, what, tmp_path):
    result = run_cli(
        ["train", "--set", override, "--out", str(tmp_path / "run")],
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "80"},
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error = [line for line in lines if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr and "Retrying" not in result.stderr
    assert f"{what} '" in error[0] and "Hub id" in error[0] and "HF_HUB_OFFLINE" in error[0]
    assert "local" in error[0]


def test_an_unreachable_hub_endpoint_is_one_line_too(tmp_path):
    # A closed local port stands for a machine without network (what HF_HUB_OFFLINE does not cover).
    result = run_cli(
        ["train", "--set", "model.path=HuggingFaceTB/SmolLM2-135M", "--out", str(tmp_path / "run")],
        env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "http://127.0.0.1:9 cannot be reached" in error[0]
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr


BAD_ROW = '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": 3}\n'


@pytest.mark.parametrize(
    "command,switch,not_this",
    [
        (["train", "--set", "data.train={data}", "--out", "{tmp}/r"], "data.on_error: skip", "--skip-bad"),
        (["data", "convert", "{data}", "{tmp}/o.jsonl"], "with --skip-bad", "data.on_error"),
        (
            ["rm", "eval", "--model", "{tmp}/no-model", "--data", "{data}"],
            "with --on-error skip",
            "--skip-bad",
        ),
    ],
)
def test_a_bad_row_error_names_the_switch_of_its_command(tmp_path, command, switch, not_this):
    # Each command names the switch it has: the run config's data.on_error for train, --skip-bad for
    # data convert, --on-error for rm eval (`train --skip-bad` does not exist).
    data = tmp_path / "d.jsonl"
    data.write_text(BAD_ROW)
    result = run_cli([a.format(data=data, tmp=tmp_path) for a in command])
    assert result.returncode == 1 and f"{data}:2" in result.stderr and "Traceback" not in result.stderr
    assert switch in result.stderr and not_this not in result.stderr


def test_the_suite_runs_with_its_own_home_and_cache():
    # tests/conftest.py points HOME, the XDG, Hugging Face and matplotlib folders into a temporary
    # sandbox, and gives each test its own ALIGNLAB_CACHE, before anything reads them.
    from alignlab.models.builtin import cache_root
    from alignlab.scoring.cache_store import default_dir

    sandbox = Path(os.environ["HOME"]).parent
    assert sandbox.name.startswith("alignlab-tests-home-")
    for name in (
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "HF_HOME",
        "MPLCONFIGDIR",
        "ALIGNLAB_DATA",
    ):
        assert Path(os.environ[name]).parent == sandbox
    cache = Path(os.environ["ALIGNLAB_CACHE"])
    assert sandbox not in cache.parents and cache.name.startswith("alignlab-cache")  # per test
    assert default_dir() == cache / "reference" and cache_root() == cache / "models"
    assert Path.home() == sandbox / "home"


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_sampling_raises_no_future_warning_from_transformers(arch):
    # transformers deprecates the past_key_values argument (removed in 5.40; pyproject bounds it below
    # that): our KV-cache loop must use the current name, so a FutureWarning here is an error.
    import warnings

    import torch

    from alignlab.generation import SamplingParams, build_sampler
    from alignlab.models.tiny import tiny_model

    model, tokenizer = tiny_model(arch, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        torch.manual_seed(0)
        rollouts = build_sampler("hf", model, tokenizer).sample(
            ["hello", "add 2 and 3"], SamplingParams(n=2, max_new_tokens=4)
        )
    assert len(rollouts) == 4
