"""The options the ``alignlab eval`` subcommands share, read into what they name: ``--judge`` (a judge name
or YAML mapping), ``--prompts`` (a prompt file) and a system to compare (an outputs JSONL, or a model to
generate from). A bad value is a one-line ``ConfigError``, not a traceback."""

from __future__ import annotations

from typing import Any


def judge_spec(text: str) -> Any:
    import yaml

    from alignlab.config import ConfigError

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--judge {text!r} is neither a judge name nor a YAML mapping ({err})") from None
    return spec


def judge_option(text: str) -> Any:
    from alignlab.config import ConfigError
    from alignlab.judges.build import build_judge
    from alignlab.judges.registry import JudgeConfigError

    try:
        return build_judge(judge_spec(text), where="--judge")
    except JudgeConfigError as err:
        raise ConfigError(str(err)) from None


def prompt_rows(path: str, limit: int | None) -> list[Any]:
    """The prompt records of ``--prompts``; a missing or malformed file is a one-line error, not a traceback."""
    from alignlab.config import ConfigError
    from alignlab.data.prompts import PromptSetError, load_prompts

    try:
        return load_prompts(path, limit)
    except PromptSetError as err:
        raise ConfigError(f"--prompts: {err}") from None


def system_outputs(
    source: str, prompts: list[Any] | None, tokens: int, temperature: float, seed: int
) -> list[tuple[Any, Any]]:
    """(prompt, output) rows: an outputs JSONL as is, or a model's generations for ``prompts``."""
    from alignlab.config import ConfigError
    from alignlab.eval.policy_eval import generate_outputs, read_outputs

    if source.endswith(".jsonl"):
        return read_outputs(source)
    if prompts is None:
        raise ConfigError(
            f"{source} is a model: give --prompts to generate its outputs (or pass an outputs .jsonl)"
        )
    return list(zip(prompts, generate_outputs(source, prompts, tokens, temperature, seed)))
