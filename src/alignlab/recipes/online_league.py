"""Online methods in ``alignlab sim compare``: each trains from the same SFT policy as the offline ones, on
the same world, for the same budget of judge calls, and is scored with the same gold reward and KL.

The offline objectives learn from ``P`` annotated pairs (one judge call each). An online objective gets
the same ``P`` calls, spent on its own samples: ``P // (prompts_per_rollout × (n + greedy))`` rollouts
(ReMax also judges one greedy completion per prompt), each served for ``epochs_per_rollout`` steps. Its
judge is the annotator pool's utility (the gold weights plus the pool's length bias: the proxy the pool's
labels encode, without their label noise), on the world's training prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignlab.recipes import pipeline as P
from alignlab.recipes.settings import OnlineLeague


def online_budget(judge_calls: int, league: OnlineLeague, greedy_baseline: bool) -> tuple[int, int]:
    """(rollouts, steps) that spend at most ``judge_calls`` judge calls."""
    per_rollout = league.prompts_per_rollout * (league.n + int(greedy_baseline))
    rollouts = max(1, judge_calls // per_rollout)
    return rollouts, rollouts * league.epochs_per_rollout


def online_stage(
    name: str,
    out: Path,
    policy_dir: Path,
    prompts: list[str],
    judge: dict[str, Any],
    world: dict[str, Any],
    judge_calls: int,
    league: OnlineLeague,
    console: Any = None,
) -> tuple[P.Stage, int]:
    """Train online objective ``name`` into ``out/runs/name``; returns the stage and the judge calls spent."""
    from alignlab.objectives import get
    from alignlab.objectives.rollouts import plan_for

    spec = get(name)
    plan = plan_for(spec.name, spec.check_params({}))
    greedy = bool(plan and plan.greedy_baseline)
    n = league.n if (plan is None or plan.min_samples <= league.n) else plan.min_samples
    n = 1 if greedy else n  # ReMax: one sample and its greedy baseline per prompt
    league = league.model_copy(update={"n": n})
    rollouts, steps = online_budget(judge_calls, league, greedy)
    prompt_file = out / "data" / "online_prompts.jsonl"
    prompt_file.parent.mkdir(parents=True, exist_ok=True)
    prompt_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    online = {
        "prompts": str(prompt_file),
        "prompts_per_rollout": league.prompts_per_rollout,
        "sampling": {"n": n, "max_new_tokens": league.max_new_tokens},
        "judge": judge,
        "world": world,
        "epochs_per_rollout": league.epochs_per_rollout,
        "log_samples_every": 0,
    }
    train = {"steps": steps, "batch_size": league.prompts_per_rollout, "learning_rate": league.learning_rate}
    stage = P.train_stage(
        f"runs/{name}", out, prompt_file, {"path": str(policy_dir)}, [{"name": name}], train,
        console=console, progress=False, online=online,
    )  # fmt: skip
    spent = rollouts * league.prompts_per_rollout * (n + int(greedy))
    return stage, spent
