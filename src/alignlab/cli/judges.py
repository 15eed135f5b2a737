"""``alignlab judges``: list the registered judges (reward models, ensembles, preference models, rules…)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="List the judges: things that turn completions into feedback.", add_completion=False)


@app.callback(invoke_without_command=True)
def judges(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")) -> None:
    """List every registered judge with its kind, paper and summary."""
    from alignlab.judges.registry import all_judges

    specs = all_judges()
    if as_json:
        print(json.dumps([s.describe() for s in specs], indent=2))
        return
    table = Table(title=f"{len(specs)} judges")
    for column in ("name", "kind", "paper", "summary"):
        table.add_column(column, overflow="fold")
    for s in specs:
        table.add_row(s.name, s.kind, s.paper, s.summary)
    Console().print(table)


if __name__ == "__main__":
    app()
