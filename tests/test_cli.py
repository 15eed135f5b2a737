"""The command line as a user meets it: help, the objectives listing, and user errors without tracebacks."""

import json

from tests.train._runs import run_cli


def test_help_lists_the_commands():
    result = run_cli(["--help"])
    assert result.returncode == 0
    for command in ("train", "objectives", "quickstart", "data", "app", "models"):
        assert command in result.stdout


def test_objectives_json_lists_every_objective_with_its_description():
    result = run_cli(["objectives", "--json"])
    assert result.returncode == 0
    listed = json.loads(result.stdout)
    by_name = {x["name"]: x for x in listed}
    assert {"sft", "dpo", "ipo", "kto", "simpo", "orpo", "lipo_lambda", "tdpo2"} <= set(by_name)
    assert by_name["dpo"]["needs"] == ["reference"] and by_name["dpo"]["feedback"] == "pairs"
    assert by_name["simpo"]["needs"] == [] and "2405.14734" in by_name["simpo"]["paper"]
    assert by_name["kto"]["feedback"] == "labels"


def test_unknown_config_key_names_the_key_and_the_allowed_ones(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  learning_rat: 1e-4\n")
    result = run_cli(["train", str(config)])
    assert result.returncode == 1
    assert "train.learning_rat" in result.stderr and "learning_rate" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_objective_suggests_close_names(tmp_path):
    result = run_cli(["train", "--set", "objectives.0.name=dpoo", "--out", str(tmp_path / "r")])
    assert result.returncode == 1 and "unknown objective 'dpoo'" in result.stderr and "dpo" in result.stderr


def test_bad_hyper_parameter_value_is_named(tmp_path):
    result = run_cli(["train", "--set", "objectives.0.name=dpo", "--set", "objectives.0.beta=high"])
    assert result.returncode == 1 and "'beta' must be float" in result.stderr


def test_malformed_data_line_is_named_with_its_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completions": ["b"]}\n{"prompt": "a", "completions": []}\n')
    result = run_cli(["train", "--set", f"data.train={data}", "--out", str(tmp_path / "r")])
    assert result.returncode == 1 and f"{data}:2" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli(["--debug", "train", "--set", "objectives.0.name=dpoo"])
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_command_that_exits_with_an_error_code_ends_the_process_with_it(tmp_path):
    # typer.Exit(1) raised inside a command (here: an unknown --format) must reach the shell as status 1.
    result = run_cli(["data", "validate", str(tmp_path / "x.jsonl"), "--format", "nonsense"])
    assert result.returncode == 1 and "unknown format 'nonsense'" in result.stderr
