"""``alignlab sim``: simulated worlds with a known gold reward.

alignlab sim generate --out DIR [--kind pairs|rankings|thumbs|ratings] [--set world.seed=3 ...]
alignlab sim optima [--world random|cyclic] [--beta 0.1] [--tau 0.1]
alignlab sim reproduce [--json] [--only NAME]
alignlab sim compare [--objectives all|NAMES] [--out DIR]
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Simulated worlds with known gold reward: data, optima, paper claims, league table.",
    no_args_is_help=True,
)
console = Console()


def _settings(overrides: list[str]) -> dict[str, Any]:
    """``--set world.seed=3 --set annotators.flip_rate=0.25`` → nested mapping (values parsed as YAML)."""
    from alignlab.config import apply_override, parse_override

    data: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] not in ("world", "annotators"):
            raise typer.BadParameter(f"--set {text}: keys start with 'world.' or 'annotators.'")
        apply_override(data, keys, value)
    return data


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Directory for the JSONL files."),
    kind: str = typer.Option("pairs", "--kind", help="Feedback kind: pairs, rankings, thumbs or ratings."),
    k: int = typer.Option(4, "--k", help="Completions per prompt for rankings and ratings."),
    set_: list[str] = typer.Option([], "--set", help="world.<field>=V or annotators.<field>=V"),
) -> None:
    """Write a world's prompts, demonstrations and simulated feedback (from the demonstrator's samples)."""
    from alignlab.data.io import write_records
    from alignlab.data.records import Record
    from alignlab.judges.simulated import FEEDBACK_KINDS, AnnotatorSettings, SimulatedAnnotators
    from alignlab.sim.worlds import TextWorld, WorldConfig

    if kind not in FEEDBACK_KINDS:
        raise typer.BadParameter(f"--kind must be one of {FEEDBACK_KINDS}, got '{kind}'")
    settings = _settings(set_)
    try:
        world = TextWorld(WorldConfig.model_validate(settings.get("world", {})))
        annotators = SimulatedAnnotators(
            world, AnnotatorSettings.model_validate(settings.get("annotators", {}))
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"generate/{world.config.seed}")
    files = {}
    for split in ("train", "heldout"):
        tasks = world.tasks(split)
        files[f"prompts_{split}"] = write_records(
            [Record(t.prompt, [world.ideal(t)], meta={"task": t.kind}) for t in tasks],
            out / f"prompts_{split}.jsonl",
        )
        files[f"demonstrations_{split}"] = write_records(
            world.demonstrations(split), out / f"demonstrations_{split}.jsonl"
        )
        prompts = [t.prompt for t in tasks]
        if kind == "pairs":
            a = [world.demonstrate(t, rng) for t in tasks]
            b = [world.demonstrate(t, rng) for t in tasks]
            records = annotators.pairs(prompts, a, b, source=f"sim:{split}")
        elif kind == "thumbs":
            records = [annotators.thumbs(t.prompt, world.demonstrate(t, rng), f"sim:{split}") for t in tasks]
        else:
            records = []
            for t in tasks:
                comps = list(dict.fromkeys(world.demonstrate(t, rng) for _ in range(k)))
                make = annotators.ranking if kind == "rankings" else annotators.ratings
                records.append(make(t.prompt, comps, f"sim:{split}"))
        files[f"{kind}_{split}"] = write_records(records, out / f"{kind}_{split}.jsonl")
    (out / "world.json").write_text(
        json.dumps(
            {"world": world.config.model_dump(), "annotators": annotators.settings.model_dump()}, indent=2
        )
    )
    for name, path in files.items():
        console.print(f"{name}: {path}")


@app.command()
def optima(
    world: str = typer.Option("random", "--world", help="random (BT from a random reward) or cyclic."),
    prompts: int = typer.Option(2, "--prompts"),
    completions: int = typer.Option(4, "--completions"),
    seed: int = typer.Option(0, "--seed"),
    beta: float = typer.Option(0.1, "--beta", help="KL coefficient of the DPO optimum."),
    tau: float = typer.Option(
        0.1, "--tau", help="Regularisation of IPO and the regularised Nash equilibrium."
    ),
    n: int = typer.Option(4, "--n", help="n of the best-of-n policy."),
) -> None:
    """Print a tabular world's closed-form optima: DPO, IPO, best-of-n, Nash and regularised Nash."""
    import torch

    from alignlab.sim.tabular import TabularWorld, random_world
    from alignlab.sim.tabular_nash import cyclic_world_preference, print_optima

    if world == "random":
        tab = random_world(prompts, completions, seed)
    elif world == "cyclic":
        tab = TabularWorld(ref_logp=torch.zeros(1, 3), preference=cyclic_world_preference()[None])
    else:
        raise typer.BadParameter(f"--world must be 'random' or 'cyclic', got '{world}'")
    print_optima(tab, beta, tau, n, console)


@app.command()
def reproduce(
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    only: list[str] = typer.Option([], "--only", help="Run only these claims (repeatable)."),
) -> None:
    """Run the paper claims on simulated worlds; print each with its result and PASS/FAIL."""
    from alignlab.recipes.claims import run_claims

    def note(name: str) -> None:
        if not as_json:
            console.print(f"[dim]running {name}…[/dim]")

    try:
        results = run_claims(list(only) or None, progress=note)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    else:
        table = Table(title="claims on simulated worlds")
        for col in ("claim", "paper", "world", "result", "s", ""):
            table.add_column(col, overflow="fold")
        for r in results:
            verdict = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            table.add_row(r.claim, r.paper, r.world, r.result, f"{r.seconds:.1f}", verdict)
        console.print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@app.command()
def compare(
    objectives: str = typer.Option("all", "--objectives", help="'all' or comma-separated objective names."),
    out: Path = typer.Option(Path("runs/league"), "--out", help="Directory for league.json and league.png."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps per objective (the budget)."),
) -> None:
    """Train every offline objective on the same world, data and budget; table, JSON and plot."""
    from alignlab.recipes.compare import run_compare

    settings = {"budget": {"steps": steps}} if steps else None
    try:
        run_compare(out, objectives, console, settings)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
