"""The root ``alignlab`` command: its options, the top-level commands (train, objectives, quickstart),
the mounting of every command group (one module each in this package) and ``main``, the entry point.

Exit status: 0 on success, 1 for a handled error (a bad config key, a malformed record, an unknown
objective, a diverged run, a missing file or a full disk: one clear message, ``--debug`` shows the
traceback instead), 2 for a usage error (an unknown option or command), 130 after Ctrl-C (SIGINT) and
143 after SIGTERM. Every command group follows the same rule.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from alignlab import __version__
from alignlab.durable import Interrupted

main_app = typer.Typer(
    name="alignlab",
    help="Align language models with feedback from people or models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _flag_aware_type(display: Callable[[Any, Any], str | None]) -> Callable[[Any, Any], str | None]:
    """typer ≥ 0.29 shows an on/off flag as ``--resume <bool>``, which reads as if it took a value (and
    ``--resume true`` is refused): a flag shows no type, like every other click program."""

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else display(self, ctx)

    return display_type_rich


if not getattr(typer.core.TyperOption.display_type_rich, "flag_aware", False):
    typer.core.TyperOption.display_type_rich = _flag_aware_type(typer.core.TyperOption.display_type_rich)
    typer.core.TyperOption.display_type_rich.flag_aware = True  # type: ignore[attr-defined]


def _plain_help_text(make: Callable[..., Any]) -> Callable[..., Any]:
    """Help texts are plain text: typer parsed them as rich markup, so "[default: ...]" or
    "{section: [subset, ...]}" vanished from `--help`. Brackets now print as written."""

    def make_rich_text(*, text: str, style: str = "", markup_mode: Any) -> Any:
        from rich.markup import escape

        return make(
            text=escape(text) if markup_mode == "rich" else text, style=style, markup_mode=markup_mode
        )

    make_rich_text.plain = True  # type: ignore[attr-defined]
    return make_rich_text


_rich_utils = importlib.import_module("typer.rich_utils")
if hasattr(_rich_utils, "_make_rich_text") and not getattr(_rich_utils._make_rich_text, "plain", False):
    _rich_utils._make_rich_text = _plain_help_text(_rich_utils._make_rich_text)
_DEBUG = {"on": False}


# The errors a user can fix, as (module, class): matched by name so that catching them does not import
# torch and the trainer at start-up (an exception's class is always in an imported module).
_USER_ERRORS = (
    ("alignlab.config", "ConfigError"),
    ("alignlab.data.records", "RecordError"),
    ("alignlab.eval.registry", "MetricError"),
    ("alignlab.models.loading", "ModelLoadError"),
    ("alignlab.objectives.registry", "ObjectiveError"),
    ("alignlab.objectives.views", "FeedbackMismatch"),
    ("alignlab.train.step", "TrainingStopped"),
)


def _is_user_error(err: BaseException) -> bool:
    if isinstance(err, OSError):  # a missing file, a full disk, no permission: the message names the path
        return True
    for module, name in _USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(err, cls):
            return True
    return False


def _quiet_libraries() -> None:
    """transformers' info logs and progress bars off, through the environment variables that it and
    huggingface_hub read when first imported (so that `--help` need not import them; a user's own
    setting wins)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already (an in-process caller): tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


@main_app.callback(invoke_without_command=True)
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    _DEBUG["on"] = debug
    if version:
        console.print(f"alignlab {__version__}")
        raise typer.Exit()
    _quiet_libraries()


TRAIN_EPILOG = (
    "Config sections: name, out, model (path, dtype, lora, ...), reference, data (train, eval, format, "
    "on_error, limit, max_length, ...), objectives (name and hyper-parameters), train (steps, batch_size, "
    "learning_rate, schedule, threads, eval_every, save_every, ...), online. Every key, its default and "
    "what it does: docs/config.md. Override any of them with --set KEY=VALUE, e.g. --set train.steps=50. "
    "TRL's argument names work too (--model_name_or_path, --dataset_name, --output_dir, --max_steps, "
    "--per_device_train_batch_size, --loss_type, --beta, ...): docs/from_trl.md."
)


@main_app.command(epilog=TRAIN_EPILOG)
def train(
    config: Path | None = typer.Argument(None, help="Run config (YAML). Omit to use the defaults."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set train.learning_rate=1e-4"),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: runs/<name>)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its last checkpoint. --resume CHECKPOINT continues from that "
        "checkpoint instead (a checkpoints/step-N folder, or a run directory: its latest), writing to --out.",
    ),
) -> None:
    """Train a policy (or reward model) with the objectives of CONFIG."""
    from alignlab.config import load_config
    from alignlab.train.trainer import train as run_training

    overrides = _TRL_OVERRIDES.pop("train", []) + list(set_) + ([f"out={out}"] if out else [])
    resume_from = _RESUME_FROM.pop("train", None)
    cfg = load_config(config, overrides)
    print_run_result(run_training(cfg, resume=resume_from or resume, console=err_console))


def print_run_result(result: Any) -> None:
    """The table a finished run prints: steps, final and held-out losses, where the model is."""
    table = Table(title=f"run: {result.run_dir}", show_header=False)
    table.add_row("steps", str(result.steps))
    for key in ("loss", "eval/loss", "rewards/accuracies", "rewards/margins", "eval/rewards/accuracies"):
        if key in result.metrics and result.metrics[key] is not None:
            table.add_row(key, f"{result.metrics[key]:.4f}")
    if result.eval_before is not None:
        table.add_row("held-out loss before → after", f"{result.eval_before:.4f} → {result.eval_after:.4f}")
    table.add_row("model", str(result.model_dir))
    console.print(table)


@main_app.command()
def objectives(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/objectives.md."),
    family: str | None = typer.Option(None, "--family", help="Only this family."),
) -> None:
    """List every registered objective with its family, feedback, paper and needs."""
    from alignlab.objectives import all_specs
    from alignlab.objectives.docs import markdown_catalog

    specs = [s for s in all_specs() if family is None or s.family == family]
    if as_json:
        print(json.dumps([s.describe() for s in specs], indent=2, default=str))
        return
    if markdown:
        print(markdown_catalog(specs), end="")
        return
    table = Table(title=f"{len(specs)} objectives")
    for column in ("name", "family", "feedback", "needs", "paper"):
        table.add_column(column, overflow="fold")
    for s in specs:
        table.add_row(s.name, s.family, s.feedback, ", ".join(sorted(s.needs)) or "-", s.paper)
    console.print(table)


@main_app.command()
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Where to write the run."),
    steps: int | None = typer.Option(None, "--steps", help="Override the number of training steps."),
) -> None:
    """The main job on the built-in default: align a tiny model end to end and report."""
    from alignlab.recipes.quickstart import run_quickstart

    run_quickstart(out, steps=steps, console=console)


# Every command group: its module (imported only when the group runs, so `alignlab --help`, `--version`
# and `alignlab train` do not pay for torch, sqlalchemy or the app) and the one line `alignlab --help` shows.
GROUPS: dict[str, tuple[str, str]] = {
    "models": ("alignlab.cli.models", "Built-in models: tiny ones for tests, real ones prepared on request."),
    "data": ("alignlab.cli.data", "Validate and convert feedback data."),
    "judges": ("alignlab.cli.judges", "List judges: reward models, preference models, rules."),
    "rm": ("alignlab.cli.rm", "Evaluate reward models (alias of `alignlab eval judge`)."),
    "eval": (
        "alignlab.cli.eval",
        "Evaluate policies, reward models, feedback and runs, with uncertainty.",
    ),
    "cache": ("alignlab.cli.cache", "List and prune the reference log-prob cache."),
    "sim": ("alignlab.cli.sim", "Simulated worlds: data, optima, paper claims, league table."),
    "app": ("alignlab.cli.app", "Human feedback collection web app."),
    "trl": ("alignlab.cli.trl", "Run a TRL command line or TRL YAML config as alignlab (docs/from_trl.md)."),
}


def _group_app(name: str) -> typer.Typer:
    module, _ = GROUPS[name]
    try:
        return importlib.import_module(module).app
    except ImportError as err:
        if name != "app":
            raise
        missing = str(err)  # the app extra is not installed
        feedback_app = typer.Typer(help="Human feedback web app (needs: pip install 'alignlab[app]').")

        @feedback_app.callback(invoke_without_command=True)
        def _missing() -> None:
            err_console.print(
                f"[red]error:[/red] the app needs its extra: pip install 'alignlab[app]' ({missing})"
            )
            raise typer.Exit(1)

        return feedback_app


def _mount_groups(wanted: str | None = None) -> None:
    """Mount every group on the root: the real one for ``wanted`` (or for all groups when ``wanted`` is
    ``"*"``), and for the others a placeholder that carries only the line ``alignlab --help`` lists."""
    main_app.registered_groups = [g for g in main_app.registered_groups if g.name not in GROUPS]
    for name, (_, help_text) in GROUPS.items():
        group = _group_app(name) if wanted in (name, "*") else typer.Typer(help=help_text)
        main_app.add_typer(group, name=name, help=help_text)


_TRAIN_OPTIONS = {"--set": True, "--out": True, "--resume": False, "--help": False}  # option: takes a value
_TRL_OVERRIDES: dict[str, list[str]] = {}  # the TRL arguments of `alignlab train`, as --set overrides
_RESUME_FROM: dict[str, str] = {}  # the CHECKPOINT of `alignlab train --resume CHECKPOINT`


def _resume_value(token: str, following: str | None) -> tuple[str | None, bool]:
    """(the checkpoint that ``--resume`` names, whether it took the next argument). ``--resume=PATH`` always
    names one; ``--resume PATH`` does when PATH is a folder, or is not an existing file and does not end in
    .yaml/.yml (so ``alignlab train --resume run.yaml`` still reads run.yaml as the config)."""
    if token.startswith("--resume="):
        return token.split("=", 1)[1], False
    if following is None or following.startswith("-"):
        return None, False
    path = Path(following)
    if path.is_dir() or not (path.exists() or path.suffix in (".yaml", ".yml")):
        return following, True
    return None, False


def _split_trl_arguments(argv: list[str]) -> list[str]:
    """``alignlab train`` also takes TRL's argument names (``--model_name_or_path``, ``--max_steps``, ...;
    docs/from_trl.md): they are taken out of ``argv`` here and kept as config overrides, which the
    command's own ``--set`` then override. So is the optional CHECKPOINT of ``--resume`` (click's flags take
    no value). Anything else is left for click."""
    start = argv.index("train") + 1
    kept, trl, i = argv[:start], [], start
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0]
        if name == "--resume":
            value, took_next = _resume_value(token, argv[i + 1] if i + 1 < len(argv) else None)
            kept.append("--resume")
            if value is not None:
                _RESUME_FROM["train"] = value
            i += 1 + int(took_next)
            continue
        if not token.startswith("--") or name in _TRAIN_OPTIONS:
            kept.append(token)
            if _TRAIN_OPTIONS.get(name) and "=" not in token and i + 1 < len(argv):
                kept.append(argv[i + 1])
                i += 1
        else:
            from alignlab.cli.trl_map import takes_value

            trl.append(token)
            following = argv[i + 1] if i + 1 < len(argv) else None
            if "=" not in token and following is not None and takes_value(name[2:], following):
                trl.append(following)
                i += 1
        i += 1
    if trl:
        from alignlab.cli.trl_map import TrlArgumentError, parse_argv, translate

        try:
            translation = translate(parse_argv(trl))
        except TrlArgumentError as err:
            raise click_usage_error(str(err)) from None
        for note in translation.notes:
            err_console.print(f"[dim]alignlab:[/dim] {note}", highlight=False)
        _TRL_OVERRIDES["train"] = translation.overrides()
        err_console.print(
            "[dim]alignlab:[/dim] TRL arguments read as: --set " + " --set ".join(_TRL_OVERRIDES["train"]),
            highlight=False,
        )
    return kept


def click_usage_error(message: str) -> Exception:
    import click

    return click.UsageError(message)


def _command_name(argv: list[str]) -> str | None:
    """The command or group that ``argv`` runs (the root's own options are flags and take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


_mount_groups()  # placeholders, so main_app lists every group even when used without main()


def main(argv: list[str] | None = None) -> None:
    try:
        # Without standalone mode click *returns* the code of a typer.Exit instead of raising it, so the
        # status must be passed on here (dropping it made every handled error exit 0).
        args = list(sys.argv[1:] if argv is None else argv)
        command = _command_name(args)
        _mount_groups(command)
        if command == "train":
            args = _split_trl_arguments(args)
        status = main_app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as err:
        if isinstance(err, Interrupted):  # stopped on SIGINT/SIGTERM after saving its state
            err_console.print(str(err), highlight=False)
            sys.exit(err.exit_code)
        if _is_user_error(err):
            if _DEBUG["on"] or "--debug" in (argv or sys.argv):
                raise
            err_console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
            sys.exit(1)
        # Usage errors (click's, or the copy typer bundles) come through here in non-standalone mode.
        if callable(getattr(err, "show", None)) and isinstance(getattr(err, "exit_code", None), int):
            err.show()
            sys.exit(err.exit_code)
        raise
    if isinstance(status, int) and status != 0:
        sys.exit(status)  # (on success return normally, so in-process callers need not catch SystemExit)
