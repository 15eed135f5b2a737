"""``alignlab sim compare``: a league table of objectives on one world, one data set, one budget.

Every objective starts from the same SFT policy, trains on the same simulated preferences for the same
number of steps, batch size and learning rate, and is judged by the world's gold reward: mean gold
reward, win rate against SFT (noise-free gold annotator), KL to SFT from samples, wall time and peak
memory (growth of the process's resident set while it trains, sampled every 20 ms; Linux only). Online
methods (grpo, ppo, ...) sample their own completions and spend the same number of judge calls as the
offline ones have labelled pairs (``recipes/online_league.py``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from alignlab.data.io import write_records
from alignlab.data.records import Record
from alignlab.eval import plots
from alignlab.judges.simulated import SimulatedAnnotators
from alignlab.objectives import get
from alignlab.recipes import pipeline as P
from alignlab.recipes.online_league import online_stage
from alignlab.recipes.settings import CompareSettings, resolve_settings
from alignlab.sim.worlds import TextWorld

# What the league's records carry: simulated annotators' rankings, labels and ratings of (prompt,
# completions), and nothing else (no reference responses, contexts or auxiliary completions).
# Online objectives ("rollouts") sample their own completions and spend the same number of judge calls.
FEEDBACK = ("pairs", "ranking", "labels", "scores", "rollouts")
SUPPLIED: frozenset[str] = frozenset()  # objectives/registry.py REQUIREMENTS the league's data meets


def can_feed(spec: Any) -> bool:
    """Whether the league's data feeds the objective: its feedback kind, and every data it requires.

    Reward models are another job (they train a judge, not a policy), so they are not in the league.
    """
    return spec.feedback in FEEDBACK and spec.family != "reward_model" and spec.requires <= SUPPLIED


def offline_objectives() -> list[str]:
    from alignlab.objectives import all_specs

    return sorted(s.name for s in all_specs() if can_feed(s))


def resolve_objectives(spec: str) -> list[str]:
    """``all`` or comma-separated names (each checked against the registry)."""
    known = offline_objectives()
    if spec.strip() == "all":
        return known
    names = [n.strip() for n in spec.split(",") if n.strip()]
    from alignlab.objectives import all_specs

    registered = {s.name for s in all_specs()}
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise ValueError(f"--objectives: unknown objective(s) {unknown}; see `alignlab objectives`")
    from alignlab.objectives import get
    from alignlab.objectives.registry import REQUIREMENTS

    for name in names:
        spec = get(name)
        if not can_feed(spec):
            why = (
                "; ".join(REQUIREMENTS[r] for r in sorted(spec.requires - SUPPLIED))
                if spec.requires - SUPPLIED
                else f"{spec.family} objectives consuming '{spec.feedback}' are not part of the league"
            )
            raise ValueError(
                f"--objectives: the league's simulated data cannot feed '{name}': it requires {why}"
            )
    return names


class PeakMemory:
    """Largest resident-set growth over the block, from /proc/self/statm (nan where unavailable)."""

    def __enter__(self) -> PeakMemory:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def megabytes(self) -> float:
        return (self.peak - self.base) / 2**20


def _rss() -> float:
    try:
        import os

        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return float(pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return float("nan")


def with_all_feedback(records: list[Record], annotators: SimulatedAnnotators) -> list[Record]:
    """Pairs that also carry labels (chosen good, rejected bad) and the annotators' noisy 1–5 ratings."""
    out = []
    for r in records:
        rated = annotators.ratings(r.prompt, r.completions)
        scores = [{"score": sum(s.values()) / len(s)} for s in rated.scores]
        out.append(
            Record(
                r.prompt,
                r.completions,
                ranking=r.ranking,
                labels=[True, False],
                scores=scores,
                source=r.source,
                annotator=r.annotator,
            )
        )
    return out


def run_compare(
    out: Path,
    objectives: str = "all",
    console: Console | None = None,
    settings: dict[str, Any] | CompareSettings | None = None,
) -> list[dict[str, Any]]:
    """``settings``: overrides of :class:`CompareSettings` (a mapping, validated: a misspelt key is an error)."""
    console = console or Console()
    cfg = resolve_settings(CompareSettings, settings, where="sim compare")
    with P.cpu_threads(1):  # see QuickstartSettings.threads
        return _run(out, objectives, console, cfg)


def _run(out: Path, objectives: str, console: Console, cfg: CompareSettings) -> list[dict[str, Any]]:
    names = resolve_objectives(objectives)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = cfg.seed
    world = TextWorld(cfg.world_config())
    annotators = SimulatedAnnotators(world, cfg.annotator_settings())
    console.print(f"[bold]league[/bold]: {len(names)} objective(s) on the text world (seed {seed})")
    demos = out / "data" / "demonstrations.jsonl"
    demos.parent.mkdir(parents=True, exist_ok=True)
    write_records(world.demonstrations("train", per_prompt=2), demos)
    sft = P.train_stage("sft", out, demos, {}, [{"name": "sft"}], cfg.sft.train(), console=console)
    policy, tokenizer = P.load_policy(sft.model_dir)
    prompts, a, b = P.sample_pairs(policy, tokenizer, world.prompts("train"), seed=seed + 1)
    pairs = annotators.pairs(prompts, a, b, source="sim:annotators")
    prefs = out / "data" / "preferences.jsonl"
    write_records(with_all_feedback(pairs, annotators), prefs)
    heldout = world.prompts("heldout")
    # Online methods are judged by the pool's utility: its proxy of the gold reward, without label noise.
    online_judge = {"name": "simulated", "annotators": cfg.annotator_settings().model_dump()}
    online_world = cfg.world_config().model_dump()
    sft_eval = P.evaluate_policy(world, policy, tokenizer, heldout, seed=seed + 3)
    rows = [
        {
            "objective": "sft (reference)",
            "gold_reward": sft_eval["gold_reward"],
            "winrate_vs_sft": 50.0,
            "winrate_se": 0.0,
            "kl": 0.0,
            "seconds": round(sft.seconds, 1),
            "peak_mb": float("nan"),
            "error": "",
        }
    ]
    for i, name in enumerate(names, 1):
        console.print(f"[bold cyan][{i}/{len(names)}][/bold cyan] {name}")
        row: dict[str, Any] = {"objective": name}
        try:
            with PeakMemory() as memory:
                if get(name).feedback == "rollouts":  # online: its own samples, the same judge budget
                    stage, row["judge_calls"] = online_stage(
                        name, out, sft.model_dir, world.prompts("train"), online_judge, online_world,
                        len(pairs), cfg.online, console,
                    )  # fmt: skip
                else:
                    row["judge_calls"] = len(pairs)
                    stage = P.train_stage(
                        f"runs/{name}",
                        out,
                        prefs,
                        {"path": str(sft.model_dir)},
                        [{"name": name}],
                        cfg.budget.train(),
                        console=console,
                        progress=False,
                    )
            trained, _ = P.load_policy(stage.model_dir)
            ev = P.evaluate_policy(
                world,
                trained,
                tokenizer,
                heldout,
                seed=seed + 4,
                reference=policy,
                reference_samples=sft_eval["samples"],
            )
            row.update(
                gold_reward=ev["gold_reward"],
                winrate_vs_sft=ev["winrate"]["win_rate"],
                winrate_se=ev["winrate"]["standard_error"],
                kl=ev["kl"],
                seconds=round(stage.seconds, 1),
                peak_mb=round(memory.megabytes, 1),
                error="",
            )
        except Exception as err:  # one method's failure is a row, not a lost table
            row.update(
                gold_reward=float("nan"),
                winrate_vs_sft=float("nan"),
                winrate_se=float("nan"),
                kl=float("nan"),
                seconds=float("nan"),
                peak_mb=float("nan"),
                error=f"{type(err).__name__}: {err}",
            )
        rows.append(row)
    (out / "league.json").write_text(json.dumps(rows, indent=2))
    plots.league(out / "league.png", [r for r in rows if r["error"] == ""])
    _print(console, rows, out)
    return rows


def _print(console: Console, rows: list[dict[str, Any]], out: Path) -> None:
    table = Table(title="league: same world, data and budget (± = standard error)")
    for col in (
        "objective",
        "gold reward",
        "win rate vs SFT % ± SE",
        "KL(π ‖ SFT), nats",
        "judge calls",
        "time s",
        "peak MB",
        "error",
    ):
        table.add_column(col)
    for r in sorted(rows, key=lambda r: -r["gold_reward"] if r["gold_reward"] == r["gold_reward"] else 1e9):
        table.add_row(
            r["objective"],
            f"{r['gold_reward']:.3f}",
            f"{r['winrate_vs_sft']:.1f} ± {r['winrate_se']:.1f}",
            f"{r['kl']:.3f}",
            str(r.get("judge_calls", "")),
            str(r["seconds"]),
            str(r["peak_mb"]),
            r["error"][:60],
        )
    console.print(table)
    console.print(f"table: {out / 'league.json'}; plot: {out / 'league.png'}")
