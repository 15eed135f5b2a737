"""``alignlab trl TRAINER [--config trl.yaml] [--dry-run] [TRL arguments ...]``: a TRL command line (or TRL
YAML config) read as the alignlab run it stands for, printed as an alignlab config, then run.

TRAINER is one of TRL's: dpo, kto, orpo, cpo, reward, sft. The arguments and loss types it understands, and
what each becomes, are in ``trl_map.py`` (docs/from_trl.md). An argument not given takes TRL 1.16's default
for that trainer, not alignlab's (``trl_defaults.py``), and the printed config starts with comments saying
which values are TRL's defaults and which of them alignlab cannot match exactly. ``alignlab trl
--markdown`` prints docs/from_trl.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from alignlab.cli.trl_map import TrlArgumentError, markdown, parse_argv, translate_trl

app = typer.Typer(
    help="Run a TRL command line or TRL YAML config as the alignlab run it stands for (docs/from_trl.md).",
    add_completion=False,
)
err_console = Console(stderr=True)
TRAINERS = ("dpo", "kto", "orpo", "cpo", "reward", "sft")
_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    as_markdown: bool = typer.Option(False, "--markdown", help="Print docs/from_trl.md (the whole map)."),
) -> None:
    """TRL's trainers, loss types and arguments in alignlab's terms."""
    if as_markdown:
        print(markdown(), end="")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())


def _read_trl_yaml(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise TrlArgumentError(f"--config {path}: no such file")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise TrlArgumentError(f"--config {path}: expected a mapping of TRL arguments (name: value)")
    return {str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in loaded.items()}


def run_trl(
    trainer: str, config: Path | None, dry_run: bool, argv: list[str], sets: list[str] | None = None
) -> None:
    """Translate, print the alignlab config, and (unless ``dry_run``) train it. ``sets`` are alignlab
    ``--set KEY=VALUE`` overrides applied after the translation (a key TRL has no argument for, such as
    ``data.on_error``, which the data errors name)."""
    from alignlab.config import ConfigError, dump_config, load_config

    try:
        args = _read_trl_yaml(config) if config else {}
        args.update(parse_argv(argv))  # the command line wins over the file, as in TRL
        translation = translate_trl(args, trainer)  # TRL's defaults where an argument is absent
    except TrlArgumentError as err:
        raise ConfigError(f"alignlab trl {trainer}: {err}") from None
    cfg = load_config(None, [*translation.overrides(), *(sets or [])])
    for note in translation.notes:
        err_console.print(f"[dim]alignlab:[/dim] {note}", highlight=False)
    err_console.print(f"[dim]alignlab:[/dim] TRL {trainer} as an alignlab config (alignlab train CONFIG):")
    print(translation.header)
    print(dump_config(cfg).rstrip("\n"), flush=True)
    if dry_run:
        return
    from alignlab.cli.root import print_run_result
    from alignlab.train.trainer import train

    print_run_result(train(cfg, console=err_console))


def _make_command(trainer: str) -> Any:
    def command(
        ctx: typer.Context,
        config: Path | None = typer.Option(None, "--config", help="A TRL YAML config (argument: value)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the alignlab config; do not train."),
        set_: list[str] = typer.Option(
            [], "--set", help="An alignlab key TRL has no argument for: --set data.on_error=skip (wins)."
        ),
    ) -> None:
        run_trl(trainer, config, dry_run, list(ctx.args), set_)

    command.__doc__ = (
        f"TRL's {trainer} trainer: any of its arguments (--model_name_or_path, --dataset_name, --loss_type, "
        "--beta, --max_steps, --per_device_train_batch_size, ...; see docs/from_trl.md). Arguments not given "
        "take TRL's defaults for this trainer; the printed config lists them."
    )
    return command


for _trainer in TRAINERS:
    app.command(_trainer, context_settings=_EXTRA)(_make_command(_trainer))
