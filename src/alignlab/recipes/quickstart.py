"""``alignlab quickstart``: the whole path on a simulated world with a known gold reward.

    world + tiny model → SFT on imperfect demonstrations → sample pairs → simulated annotators label them
    → reward model (Bradley–Terry) and DPO → best-of-N with the reward model → gold evaluation
    → DIR/report.html (plots embedded), DIR/*.png, DIR/metrics.json

Under five minutes on two CPU cores with the default config; ``fast=True`` shrinks every stage for tests.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from alignlab.data.io import write_records
from alignlab.eval.curves import best_of_n_curve, best_of_n_standard_error
from alignlab.judges.simulated import SimulatedAnnotators
from alignlab.recipes import pipeline as P
from alignlab.recipes.claims import overoptimisation
from alignlab.recipes.quickstart_report import verdict, write_quickstart_report
from alignlab.recipes.settings import QUICKSTART_FAST, QuickstartSettings, resolve_settings
from alignlab.sim.worlds import TextWorld
from alignlab.train.logger import duration


def run_quickstart(
    out: Path,
    fast: bool = False,
    console: Console | None = None,
    settings: dict[str, Any] | QuickstartSettings | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Run the pipeline into ``out``; ``steps`` sets every training stage's steps; returns metrics.json's dict.

    ``settings``: overrides of :class:`QuickstartSettings` (a mapping, validated: a misspelt key is an
    error), applied after the ``fast`` profile.
    """
    console = console or Console()
    stage_steps = {stage: {"steps": steps} for stage in ("sft", "reward_model", "dpo")} if steps else None
    cfg = resolve_settings(
        QuickstartSettings, QUICKSTART_FAST if fast else None, settings, stage_steps, where="quickstart"
    )
    with P.cpu_threads(cfg.threads):
        return _run(out, console, cfg)


def _run(out: Path, console: Console, cfg: QuickstartSettings) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    seed = cfg.seed
    world = TextWorld(cfg.world_config())
    annotators = SimulatedAnnotators(world, cfg.annotator_settings())

    last = [start]

    def step(i: int, text: str) -> None:
        # The stage before this one took (a duration), and the time since the start (a clock reading).
        now = time.perf_counter()
        took = f"stage {i - 1} took {duration(now - last[0])}; " if i > 1 else ""
        last[0] = now
        console.print(
            f"[bold cyan][{i}/6][/bold cyan] {text}  [dim]({took}{duration(now - start)} since the start)[/dim]"
        )

    step(
        1,
        f"world: {world.config.num_train} train / {world.config.num_heldout} held-out prompts; SFT on imperfect demonstrations",
    )
    demos = out / "data" / "demonstrations.jsonl"
    demos.parent.mkdir(parents=True, exist_ok=True)
    write_records(world.demonstrations("train", per_prompt=1), demos)
    sft = P.train_stage("sft", out, demos, {}, [{"name": "sft"}], cfg.sft.train(), console=console)
    policy, tokenizer = P.load_policy(sft.model_dir)

    step(2, "sampling pairs from the SFT policy; simulated annotators label them")
    train_prompts, heldout = world.prompts("train"), world.prompts("heldout")
    prompts, a, b = P.sample_pairs(
        policy, tokenizer, train_prompts, seed=seed + 1, per_prompt=cfg.pairs_per_prompt
    )
    prefs_path = out / "data" / "preferences.jsonl"
    prefs = P.label_pairs(annotators, prompts, a, b, prefs_path, source="sim:annotators")
    hp, ha, hb = P.sample_pairs(policy, tokenizer, heldout, seed=seed + 2)
    heldout_pairs = P.gold_pairs(world, hp, ha, hb)
    write_records(heldout_pairs, out / "data" / "heldout_gold_pairs.jsonl")
    console.print(
        f"  {len(prefs)} labelled pairs (flip rate {annotators.settings.flip_rate}), {len(heldout_pairs)} held-out gold pairs"
    )

    step(3, "reward model (Bradley–Terry) on the simulated labels")
    rm = P.train_stage(
        "reward_model",
        out,
        prefs_path,
        {"path": str(sft.model_dir), "kind": "reward_model"},
        [{"name": "bt"}],
        cfg.reward_model.train(),
        console=console,
    )
    from alignlab.judges.reward_model import RewardModelJudge

    judge = RewardModelJudge.load(rm.run_dir)
    rm_accuracy = _pair_accuracy(judge, heldout_pairs)

    step(4, "DPO from the SFT policy on the same labels")
    dpo = P.train_stage(
        "dpo",
        out,
        prefs_path,
        {"path": str(sft.model_dir)},
        [{"name": "dpo", "beta": cfg.dpo.beta}],
        cfg.dpo.train(),
        console=console,
    )
    dpo_policy, _ = P.load_policy(dpo.model_dir)

    step(5, "evaluating on held-out prompts with the gold reward; best-of-N with the reward model")
    k = cfg.eval_samples_per_prompt
    sft_eval = P.evaluate_policy(world, policy, tokenizer, heldout, seed=seed + 3, samples_per_prompt=k)
    dpo_eval = P.evaluate_policy(
        world,
        dpo_policy,
        tokenizer,
        heldout,
        seed=seed + 4,
        reference=policy,
        reference_samples=sft_eval["samples"],
        samples_per_prompt=k,
    )
    bon = _best_of_n(world, judge, policy, tokenizer, heldout, cfg.bon.samples, seed + 5)
    for ev in (sft_eval, dpo_eval):  # each sample's gold reward, for the report's samples table
        ev["gold"] = world.gold_reward(ev["prompts"], ev["samples"]).tolist()
    # The over-optimisation claim of `alignlab sim reproduce`: a proxy reward model pushed to n = 64.
    over_passed, over_text, over_curves = overoptimisation()
    n = cfg.bon.n
    bon_index = bon["n"].index(n) if n in bon["n"] else len(bon["n"]) - 1

    step(6, "writing the report")
    metrics = {
        "sft": {
            "gold_reward": sft_eval["gold_reward"],
            "gold_reward_se": sft_eval["gold_reward_se"],
            "attributes": sft_eval["attributes"],
            "seconds": round(sft.seconds, 1),
        },
        "rm": {
            "heldout_accuracy": rm_accuracy,
            # binomial standard error √(p(1 − p)/n) over the held-out pairs
            "heldout_accuracy_se": math.sqrt(rm_accuracy * (1 - rm_accuracy) / max(len(heldout_pairs), 1)),
            "heldout_pairs": len(heldout_pairs),
            "seconds": round(rm.seconds, 1),
        },
        "dpo": {
            "gold_reward": dpo_eval["gold_reward"],
            "gold_reward_se": dpo_eval["gold_reward_se"],
            "winrate_vs_sft": dpo_eval["winrate"]["win_rate"],
            "winrate_se": dpo_eval["winrate"]["standard_error"],
            "winrate_n": dpo_eval["winrate"]["n"],
            "kl": dpo_eval["kl"],
            "kl_se": dpo_eval["kl_se"],
            "attributes": dpo_eval["attributes"],
            "seconds": round(dpo.seconds, 1),
        },
        "bon": {
            "n": bon["n"][bon_index],
            "gold_reward": bon["gold"][bon_index],
            "gold_reward_se": bon["gold_se"][bon_index],
            "kl": bon["kl"][bon_index],
            "curve": bon,
        },
        "overoptimisation": {
            "shown": over_passed,
            "summary": over_text,
            "proxy_curve": over_curves["proxy_curve"],
            "gold_curve": over_curves["gold_curve"],
        },
        "data": {"demonstrations": world.config.num_train, "preferences": len(prefs)},
        "config": cfg.model_dump(mode="json"),
    }
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    d = metrics["dpo"]
    metrics["verdict"] = verdict(d["winrate_vs_sft"], d["winrate_se"], d["winrate_n"])[0]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    weights = world.config.gold.as_vector()
    write_quickstart_report(out, metrics, sft_eval, dpo_eval, weights, cfg.eval_samples_per_prompt)
    _print_summary(console, metrics, out)
    return metrics


def _pair_accuracy(judge: Any, pairs: list[Any]) -> float:
    if not pairs:
        return float("nan")
    prompts = [r.prompt for r in pairs]
    chosen = P.proxy_scores(judge, prompts, [r.completions[0] for r in pairs])
    rejected = P.proxy_scores(judge, prompts, [r.completions[1] for r in pairs])
    return float(((chosen > rejected).double() + 0.5 * (chosen == rejected).double()).mean())


def _best_of_n(
    world: TextWorld, judge: Any, policy: Any, tokenizer: Any, prompts: list[str], m: int, seed: int
) -> dict:
    flat = P.sample_texts(P.sample(policy, tokenizer, prompts, m, seed, max_new_tokens=16))
    flat_p = [p for p in prompts for _ in range(m)]
    proxy = P.proxy_scores(judge, flat_p, flat).reshape(len(prompts), m).numpy()
    gold = world.gold_reward(flat_p, flat).reshape(len(prompts), m).numpy()
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= m]
    curve = best_of_n_curve(proxy, gold, ns)
    curve["gold_se"] = [best_of_n_standard_error(proxy, gold, n) for n in ns]
    return curve


def _print_summary(console: Console, metrics: dict[str, Any], out: Path) -> None:
    table = Table(title="alignlab quickstart (± = standard error)", show_header=False)
    d, sft = metrics["dpo"], metrics["sft"]
    table.add_row(
        "gold reward: SFT → DPO",
        f"{sft['gold_reward']:.3f} ± {sft['gold_reward_se']:.3f} → {d['gold_reward']:.3f} ± {d['gold_reward_se']:.3f}",
    )
    table.add_row(
        f"gold reward: best-of-{metrics['bon']['n']} (reward model)",
        f"{metrics['bon']['gold_reward']:.3f} ± {metrics['bon']['gold_reward_se']:.3f}",
    )
    table.add_row(
        "DPO win rate vs SFT (gold annotator)",
        f"{d['winrate_vs_sft']:.1f}% ± {d['winrate_se']:.1f} (n = {d['winrate_n']})",
    )
    table.add_row("KL(DPO ‖ SFT)", f"{d['kl']:.3f} ± {d['kl_se']:.3f} nats")
    rm = metrics["rm"]
    table.add_row(
        "reward model held-out accuracy",
        f"{rm['heldout_accuracy']:.3f} ± {rm['heldout_accuracy_se']:.3f} (n = {rm['heldout_pairs']})",
    )
    table.add_row("time", f"{metrics['seconds']} s")
    table.add_row("report", str(out / "report.html"))
    console.print(table)
    console.print(metrics["verdict"])
