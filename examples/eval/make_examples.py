"""Write the small input files that docs/evaluation.md runs its commands on (deterministic: seed 0).

    python examples/eval/make_examples.py   # writes examples/eval/*.jsonl and runs/eval-toy-run/

The judgements come from alignlab.sim's text world and its simulated annotators, so every number in the docs
is reproducible on a laptop.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from alignlab.judges.simulated import AnnotatorGroup, AnnotatorSettings, SimulatedAnnotators
from alignlab.models.tiny import tiny_model
from alignlab.sim import tasks as T
from alignlab.sim.worlds import TextWorld

HERE = Path(__file__).parent


def write(name: str, rows: list[dict]) -> None:
    (HERE / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rng, nrng = random.Random(0), np.random.default_rng(0)
    world = TextWorld()
    seen: set[str] = set()
    pool = world.tasks("heldout") + world.tasks("train")
    tasks = [t for t in pool if not (t.prompt in seen or seen.add(t.prompt))][:80]
    prompts = [t.prompt for t in tasks]
    # Two systems with the same answers; the model adds more filler words. Annotators with a length bias.
    model = [T.render(T.POLITE_STYLE, t.answer, rng.randint(0, 8), rng) for t in tasks]
    base = [
        T.render(T.POLITE_STYLE, t.answer if i % 4 else t.wrong, rng.randint(0, 3), rng)
        for i, t in enumerate(tasks)
    ]
    weights = dict(world.config.gold.as_vector(), verbosity=0.0)
    judge = SimulatedAnnotators(
        world, AnnotatorSettings(length_bias=0.4, groups=[AnnotatorGroup(weights=weights)])
    )
    p = judge.prefer_many(prompts, model, base).numpy()
    write(
        "annotations.jsonl",
        [{"verdict": float(v), "model_output": m, "baseline_output": b} for v, m, b in zip(p, model, base)],
    )
    write("verdicts.jsonl", [{"verdict": v} for v in (2, 2, 1, 0)])
    write("model_outputs.jsonl", [{"prompt": q, "output": m} for q, m in zip(prompts, model)])
    write("baseline_outputs.jsonl", [{"prompt": q, "output": b} for q, b in zip(prompts[:78], base[:78])])
    (HERE / "rules.py").write_text(
        '"""Rule judges for the examples: the number of words (a pure length preference)."""\n\n\n'
        "def words(prompt, completion):\n    return float(len(completion.split()))\n"
    )
    strengths = {"sft": 0.0, "dpo": 60.0, "ppo": 80.0, "best_of_16": 150.0}
    names = list(strengths)
    battles = []
    for _ in range(2000):
        a, b = rng.sample(names, 2)
        pa = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
        u = rng.random()
        battles.append(
            {
                "model_a": a,
                "model_b": b,
                "winner": "tie" if u < 0.1 else "model_a" if rng.random() < pa else "model_b",
            }
        )
    write("battles.jsonl", battles)
    subsets = ["alpacaeval-easy", "mt-bench-hard", "refusals-dangerous", "math-prm", "hep-python"]
    rows = []
    for i in range(300):
        margin = nrng.normal(0.6, 1.2)
        rows.append({"subset": subsets[i % 5], "chosen_score": float(margin), "rejected_score": 0.0})
    write("rm_scores.jsonl", rows)
    write("rm_probs.jsonl", [{"p_chosen": float(1 / (1 + np.exp(-r["chosen_score"])))} for r in rows])
    d = np.linspace(0.2, 4.0, 12)
    write(
        "curve.jsonl",
        [
            {
                "kl": float(x**2),
                "gold": float(x * (1 - 0.3 * x) + nrng.normal(0, 0.02)),
                "proxy": float(1.2 * x),
            }
            for x in d
        ],
    )
    betas = [1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03]
    write(
        "daa.jsonl",
        [
            {
                "beta": b,
                "kl": float((0.4 / b) ** 1.2),
                "gold": float(np.sqrt((0.4 / b) ** 1.2) * (1 - 0.5 * np.log(np.sqrt((0.4 / b) ** 1.2)))),
            }
            for b in betas
        ],
    )
    rows = []
    for _ in range(120):
        ra, rb = rng.randint(1, 7), rng.randint(1, 7)
        truth = "a" if ra > rb else "b" if rb > ra else "tie"
        ranked = truth if rng.random() < 0.7 else rng.choice(["a", "b", "tie"])
        rows.append({"rating_a": ra, "rating_b": rb, "ranked": ranked})
    write("consistency.jsonl", rows)
    write("diversity.jsonl", [{"samples": [world.demonstrate(t, rng) for _ in range(4)]} for t in tasks[:20]])
    aspects = ("helpfulness", "clarity", "factuality", "depth", "engagement")
    write(
        "just_eval.jsonl",
        [
            {
                "judge_output": json.dumps(
                    {a: {"rationale": "...", "score": rng.randint(2, 5)} for a in aspects}
                )
            }
            for _ in range(30)
        ],
    )
    for name, most in (("terse", 3), ("plain", 5), ("wordy", 8)):  # filler 0..most words: lengths overlap
        rows = [
            {"prompt": q, "output": T.render(None, t.answer, rng.randint(0, most), rng)}
            for q, t in zip(prompts[:40], tasks)
        ]
        write(f"arena_{name}.jsonl", rows)
    pairs = [
        {
            "prompt": t.prompt,
            "completions": [T.render(T.POLITE_STYLE, t.answer, 4, rng), T.render(None, t.wrong, 0, rng)],
            "ranking": [0, 1],
        }
        for t in tasks
    ]
    write("pairs.jsonl", pairs)
    # A toy run directory: an initial tiny model and three checkpoints drifting away from it.
    run = Path("runs/eval-toy-run")  # under runs/ (not committed): models are binary
    model0, tok = tiny_model("llama", seed=0)
    model0.save_pretrained(run / "init")
    tok.save_pretrained(run / "init")
    (run / "config.yaml").write_text(f"model:\n  path: {(run / 'init').resolve()}\n")
    gen = torch.Generator().manual_seed(1)
    for step, scale in ((10, 0.05), (20, 0.15), (30, 0.3)):
        m, _ = tiny_model("llama", seed=0)
        with torch.no_grad():
            for param in m.parameters():
                param.add_(scale * torch.randn(param.shape, generator=gen))
        m.save_pretrained(run / "checkpoints" / f"step-{step}")
        tok.save_pretrained(run / "checkpoints" / f"step-{step}")
    write("prompts.jsonl", [{"prompt": q} for q in prompts[:8]])


if __name__ == "__main__":
    main()
