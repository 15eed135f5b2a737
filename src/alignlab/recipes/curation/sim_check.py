"""Does selection pay? On a simulated world with a known gold reward: train DPO on the pairs a selector
keeps and on a random subset of the same size, from the same SFT policy, and measure both policies'
gold reward (and how well the selector found the mislabelled pairs).

    python -m alignlab.recipes.curation.sim_check --out runs/select-check [--seed 0] [--steps 80]
    python -m alignlab.recipes.curation.sim_check --out runs/select-seeds --seeds 0,1,2,3,4

With ``--seeds`` each seed (world, annotators, SFT, sampling and the random subset all follow it) runs
into ``OUT/seed-N`` (a seed whose ``select_check.json`` is there is read, not rerun, so a stopped sweep
continues) and ``OUT/summary.json`` gets the per-seed gold rewards, the paired differences
selected − random, their mean, standard error, paired t test and exact sign-flip test
(``alignlab.eval.paired``). Within one seed both policies are sampled on the same held-out prompts with
the same sampling seed, so the per-prompt differences give a paired within-seed standard error too.

The world and annotators are ``alignlab sim compare``'s (512 training prompts; annotators with
temperature 0.5, label flips 0.25, a length bias); pairs are sampled from the SFT policy and labelled by
the noisy annotators. The selector is ``clear_curation`` with an AI judge that is the annotators' own
utility without the flips (``SimulatedAnnotators`` with ``flip_rate = 0``, asked in both orders and
averaged): the kind of judge one would use for CLEAR, biased by length as the annotators are, but not
the gold reward. A pair is truly mislabelled when its label disagrees with the gold reward.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from alignlab.data.io import write_records
from alignlab.data.select.clear import clear_curation
from alignlab.eval.paired import paired_test
from alignlab.judges.simulated import SimulatedAnnotators
from alignlab.recipes import pipeline as P
from alignlab.recipes.curation.select import confidences
from alignlab.recipes.settings import CompareSettings
from alignlab.sim.worlds import TextWorld


def selected_vs_random(
    out: str | Path,
    seed: int = 0,
    steps: int = 80,
    sft_steps: int = 200,
    threshold: float = 0.5,
    num_train: int = 512,
    num_heldout: int | None = None,
    pairs_from: str = "policy",
) -> dict[str, Any]:
    """Train DPO on the pairs CLEAR keeps and on a random subset of the same size; return the counts of
    truly mislabelled pairs in each, the flags' precision/recall and both policies' gold reward.

    ``pairs_from``: ``"policy"`` samples the two completions of each pair from the SFT policy (the full
    check); ``"demonstrations"`` pairs two of the world's own demonstrations of each training prompt
    (right or wrong answers, styles, filler: different gold quality by construction), so the comparison
    is meaningful even when the SFT policy is too small or too briefly trained to write anything the gold
    reward tells apart (pairs from a 30-step tiny policy tied at gold reward 0 in an earlier attempt).
    """
    if pairs_from not in ("policy", "demonstrations"):
        raise ValueError(f"pairs_from must be 'policy' or 'demonstrations', got '{pairs_from}'")
    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    cfg = CompareSettings(seed=seed)
    update: dict[str, Any] = {"num_train": num_train}
    if num_heldout is not None:
        update["num_heldout"] = num_heldout
    cfg.world = cfg.world.model_copy(update=update)
    world = TextWorld(cfg.world_config())
    annotators = SimulatedAnnotators(world, cfg.annotator_settings())
    judge = SimulatedAnnotators(world, cfg.annotator_settings().model_copy(update={"flip_rate": 0.0}))
    demos = out / "data" / "demonstrations.jsonl"
    demonstrations = world.demonstrations("train", per_prompt=2)
    write_records(demonstrations, demos)
    sft = P.train_stage(
        "sft", out, demos, {}, [{"name": "sft"}], {**cfg.sft.train(), "steps": sft_steps}, progress=False
    )
    policy, tokenizer = P.load_policy(sft.model_dir)
    if pairs_from == "policy":
        prompts, a, b = P.sample_pairs(policy, tokenizer, world.prompts("train"), seed=seed + 1)
    else:  # two demonstrations per training prompt, in the order the world drew them
        prompts = world.prompts("train")
        a = [r.completions[0] for r in demonstrations[0::2]]
        b = [r.completions[0] for r in demonstrations[1::2]]
    pairs = annotators.pairs(prompts, a, b, source="sim:annotators")
    gold = (
        world.gold_reward([r.prompt for r in pairs], [r.completions[0] for r in pairs])
        - world.gold_reward([r.prompt for r in pairs], [r.completions[1] for r in pairs])
    ).tolist()
    wrong = [g < 0 for g in gold]  # chosen is first in these records: a negative gold gap is a wrong label
    selection = clear_curation(pairs, confidences(judge, pairs), threshold=threshold)
    flagged = set(range(len(pairs))) - set(selection.indices)
    tp = sum(wrong[i] for i in flagged)
    rng = random.Random(seed)
    random_subset = sorted(rng.sample(range(len(pairs)), len(selection.indices)))
    results: dict[str, Any] = {
        "pairs": len(pairs),
        "kept": len(selection.indices),
        "mislabelled": sum(wrong),
        "flag_precision": tp / len(flagged) if flagged else float("nan"),
        "flag_recall": tp / sum(wrong) if sum(wrong) else float("nan"),
        "mislabelled_in_selected": sum(wrong[i] for i in selection.indices),
        "mislabelled_in_random": sum(wrong[i] for i in random_subset),
    }
    heldout = world.prompts("heldout")
    sft_eval = P.evaluate_policy(world, policy, tokenizer, heldout, seed=seed + 3)
    results["gold_reward_sft"] = sft_eval["gold_reward"]
    budget = {**cfg.budget.train(), "steps": steps}
    per_prompt = {}
    for name, subset in (("selected", selection.indices), ("random", random_subset)):
        path = out / "data" / f"{name}.jsonl"
        write_records([pairs[i] for i in subset], path)
        stage = P.train_stage(
            f"dpo_{name}", out, path, {"path": str(sft.model_dir)}, [{"name": "dpo"}], budget, progress=False
        )
        trained, _ = P.load_policy(stage.model_dir)
        ev = P.evaluate_policy(world, trained, tokenizer, heldout, seed=seed + 4)
        results[f"gold_reward_{name}"] = ev["gold_reward"]
        results[f"gold_reward_{name}_se"] = ev["gold_reward_se"]
        per_prompt[name] = world.gold_reward(ev["prompts"], ev["samples"]).double()
    gap = per_prompt["selected"] - per_prompt["random"]  # same prompts, same sampling seed
    results["gold_gap"] = float(gap.mean())
    results["gold_gap_se"] = float(gap.std() / max(1, len(gap)) ** 0.5)
    (out / "select_check.json").write_text(json.dumps(results, indent=1))
    return results


def over_seeds(out: str | Path, seeds: list[int], **options: Any) -> dict[str, Any]:
    """``selected_vs_random`` for each seed into ``out/seed-N`` (finished seeds are read back), and the
    paired summary over seeds, written to ``out/summary.json``."""
    out = Path(out)
    runs = []
    for seed in seeds:
        done = out / f"seed-{seed}" / "select_check.json"
        if done.exists():
            runs.append(json.loads(done.read_text()))
        else:
            runs.append(selected_vs_random(out / f"seed-{seed}", seed=seed, **options))
        print(json.dumps({"seed": seed, **{k: v for k, v in runs[-1].items() if "gold" in k}}), flush=True)
    selected = [r["gold_reward_selected"] for r in runs]
    random_ = [r["gold_reward_random"] for r in runs]
    summary = {
        "options": options,
        "per_seed": [
            {
                "seed": seed,
                "selected": r["gold_reward_selected"],
                "random": r["gold_reward_random"],
                "sft": r["gold_reward_sft"],
                "gap": r["gold_reward_selected"] - r["gold_reward_random"],
                "gap_se_within_seed": r.get("gold_gap_se"),
                "kept": r["kept"],
                "pairs": r["pairs"],
                "mislabelled_in_selected": r["mislabelled_in_selected"],
                "mislabelled_in_random": r["mislabelled_in_random"],
            }
            for seed, r in zip(seeds, runs)
        ],
        "selected_minus_random": paired_test(selected, random_).as_dict() if len(runs) > 1 else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/select-check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds: run each, then the paired summary"
    )
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--sft-steps", type=int, default=200)
    parser.add_argument("--num-train", type=int, default=512)
    parser.add_argument("--pairs-from", choices=["policy", "demonstrations"], default="policy")
    parser.add_argument("--num-heldout", type=int, default=None)
    args = parser.parse_args()
    if args.seeds:
        options = dict(
            steps=args.steps,
            sft_steps=args.sft_steps,
            num_train=args.num_train,
            num_heldout=args.num_heldout,
            pairs_from=args.pairs_from,
        )
        seeds = [int(s) for s in args.seeds.split(",")]
        print(json.dumps(over_seeds(args.out, seeds, **options), indent=1))
        return
    results = selected_vs_random(
        args.out,
        args.seed,
        args.steps,
        args.sft_steps,
        num_train=args.num_train,
        num_heldout=args.num_heldout,
        pairs_from=args.pairs_from,
    )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
