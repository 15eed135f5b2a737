"""The root ``alignlab`` command: its options, the top-level commands (train, objectives, quickstart),
the mounting of every command group (one module each in this package) and ``main``, the entry point.

Exit status: 0 on success, 1 for a handled error (a bad config key, a malformed record, an unknown
objective, a diverged run, a missing file or a full disk: one clear message, ``--debug`` shows the
traceback instead), 2 for a usage error (an unknown option or command), 130 after Ctrl-C (SIGINT) and
143 after SIGTERM. Every command group follows the same rule.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
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
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


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


@main_app.command()
def train(
    config: Path | None = typer.Argument(None, help="Run config (YAML). Omit to use the defaults."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set train.learning_rate=1e-4"),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: runs/<name>)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last checkpoint."
    ),
) -> None:
    """Train a policy (or reward model) with the objectives of CONFIG."""
    from alignlab.config import load_config
    from alignlab.train.trainer import train as run_training

    overrides = list(set_) + ([f"out={out}"] if out else [])
    cfg = load_config(config, overrides)
    result = run_training(cfg, resume=resume, console=err_console)
    table = Table(title=f"run: {result.run_dir}", show_header=False)
    table.add_row("steps", str(result.steps))
    for key in ("loss", "eval/loss", "rewards/accuracies", "rewards/margins"):
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


def _mount_groups() -> None:
    from alignlab.cli.cache import app as cache_app
    from alignlab.cli.data import app as data_app
    from alignlab.cli.eval import app as eval_app
    from alignlab.cli.judges import app as judges_app
    from alignlab.cli.models import app as models_app
    from alignlab.cli.rm import app as rm_app
    from alignlab.cli.sim import app as sim_app

    main_app.add_typer(models_app, name="models")
    main_app.add_typer(data_app, name="data", help="Validate and convert feedback data.")
    main_app.add_typer(
        judges_app, name="judges", help="List judges: reward models, preference models, rules."
    )
    main_app.add_typer(rm_app, name="rm", help="Evaluate reward models (alias of `alignlab eval judge`).")
    main_app.add_typer(
        eval_app, name="eval", help="Evaluate policies, reward models, feedback and runs, with uncertainty."
    )
    main_app.add_typer(cache_app, name="cache", help="List and prune the reference log-prob cache.")
    main_app.add_typer(
        sim_app, name="sim", help="Simulated worlds: data, optima, paper claims, league table."
    )
    try:
        from alignlab.cli.app import app as feedback_app
    except ImportError as err:  # the app extra is not installed
        missing = str(err)
        feedback_app = typer.Typer(help="Human feedback web app (needs: pip install 'alignlab[app]').")

        @feedback_app.callback(invoke_without_command=True)
        def _missing() -> None:
            err_console.print(
                f"[red]error:[/red] the app needs its extra: pip install 'alignlab[app]' ({missing})"
            )
            raise typer.Exit(1)

    main_app.add_typer(feedback_app, name="app", help="Human feedback collection web app.")


_mount_groups()


def main(argv: list[str] | None = None) -> None:
    try:
        # Without standalone mode click *returns* the code of a typer.Exit instead of raising it, so the
        # status must be passed on here (dropping it made every handled error exit 0).
        status = main_app(args=argv, standalone_mode=False)
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
            err_console.print(f"[red]error:[/red] {err}", highlight=False)
            sys.exit(1)
        # Usage errors (click's, or the copy typer bundles) come through here in non-standalone mode.
        if callable(getattr(err, "show", None)) and isinstance(getattr(err, "exit_code", None), int):
            err.show()
            sys.exit(err.exit_code)
        raise
    if isinstance(status, int) and status != 0:
        sys.exit(status)  # (on success return normally, so in-process callers need not catch SystemExit)
