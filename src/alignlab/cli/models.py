"""``alignlab models ...``: the built-in tiny models.

alignlab models tiny OUT [--arch llama|qwen2|gpt2] [--seed N]
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Built-in tiny models.", no_args_is_help=True)
console = Console()


@app.command("tiny")
def models_tiny(
    out: Path = typer.Argument(..., help="Directory to save the model and tokenizer to."),
    arch: str = typer.Option("llama", "--arch", help="llama, qwen2 or gpt2."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Save a tiny seeded model + tokenizer (save_pretrained) for tests and experiments."""
    from alignlab.models.tiny import save_tiny

    console.print(f"saved {save_tiny(out, arch, seed)}")
