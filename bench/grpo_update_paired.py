"""Paired CPU time of alignlab's GRPO update (``Trainer.train_step``) with and without the engine's lean
LM-head path, alternating in one process so the machine's load hits both sides alike.

    python bench/grpo_throughput.py --sides alignlab --prompt-sets short --steps 2 --work /tmp/grpo-work
    python bench/grpo_update_paired.py --work /tmp/grpo-work --beta 0.04 --rounds 20

``before``: the entropy metric with gradients (need ``token_entropy``) and the LM-head chunks always
checkpointed (``KEEP_LOGITS_BYTES = 0``), the engine as it was; ``after``: the defaults (need
``token_entropy_metric``, chunks kept when a call's log-probs fit in 32 MiB). The same short-prompt GRPO
step as ``grpo_throughput.py``'s alignlab side (4 prompts × 8 completions of 32 forced tokens, fp32, one
thread); every step samples a new rollout, so the sides see different but like-sized batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="a directory grpo_throughput.py prepared (--work)")
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--rounds", type=int, default=20, help="pairs of steps, the order alternating")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from grpo_sides import rule_reward

    import alignlab.scoring.engine as engine
    from alignlab.config import RunConfig
    from alignlab.judges.rules import RuleJudge
    from alignlab.train.trainer import Trainer

    work = Path(args.work)
    config = RunConfig.model_validate(
        {
            "name": "bench",
            "out": str(work / "run-update-paired"),
            "model": {"path": str(work / "model"), "dtype": "float32", "device": "cpu"},
            "objectives": [{"name": "grpo", "kl_coef": args.beta, "epsilon": 0.2}],
            "online": {
                "prompts": str(work / "prompts_short.jsonl"),
                "prompts_per_rollout": 4,
                "sampling": {"n": 8, "max_new_tokens": 32, "temperature": 1.0},
                "judge": {"name": "verifiable_answer"},
                "epochs_per_rollout": 1,
                "minibatches": 1,
                "log_samples_every": 0,
            },
            "train": {
                "batch_size": 4,
                "steps": 2 * args.rounds + 1,
                "learning_rate": 1e-6,
                "schedule": "constant",
                "mixed_precision": "no",
                "progress": False,
            },
        }
    )
    trainer = Trainer(config)
    trainer._setup()
    trainer.source.judge = RuleJudge(rule_reward, name="bench_rule")
    after_needs, keep = trainer.context.needs, engine.KEEP_LOGITS_BYTES
    before_needs = (after_needs - {"token_entropy_metric"}) | {"token_entropy"}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    train_step, side = trainer.train_step, ["after"]

    def timed(*a, **k):  # type: ignore[no-untyped-def]
        start = time.process_time()
        out = train_step(*a, **k)
        cpu[side[0]].append(time.process_time() - start)
        return out

    trainer.train_step = timed  # type: ignore[method-assign]
    trainer._step(1)  # warm-up, not counted
    cpu["after"].clear()
    step = 2
    for r in range(args.rounds):
        for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
            side[0] = name
            trainer.context.needs = before_needs if name == "before" else after_needs
            engine.KEEP_LOGITS_BYTES = 0 if name == "before" else keep
            trainer._step(step)
            step += 1
    for name, values in cpu.items():
        print(
            f"{name}: CPU s per update median {statistics.median(values):.3f}, min {min(values):.3f} (n={len(values)})"
        )
    print(
        f"after / before (medians): {statistics.median(cpu['after']) / statistics.median(cpu['before']):.3f}"
    )


if __name__ == "__main__":
    main()
