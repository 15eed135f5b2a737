"""``alignlab rm eval``: the alias of ``alignlab eval judge`` (accuracy, calibration, RewardBench sections and the
reward distribution of a reward model on labelled pairs), kept for the commands people already type."""

from __future__ import annotations

import typer

from alignlab.cli.eval import judge_command

app = typer.Typer(
    help="Reward models: evaluate them on preference data.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _root() -> None:
    """Reward-model tools."""


app.command("eval", help="Alias of `alignlab eval judge`: " + (judge_command.__doc__ or ""))(judge_command)


if __name__ == "__main__":
    app()
