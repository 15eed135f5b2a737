"""Time alignlab's scoring engine alone: one packed forward + backward per iteration, for each attention /
compile setting, on the same batch and the same weights.

    python bench/gpu/engine_timing.py --device cuda --model qwen0.5b --pairs 32 \\
        --configs sdpa,flex,sdpa+compile,flex+compile --warmup 3 --iters 10
    python bench/gpu/engine_timing.py --device cpu --model micro --pairs 4 --configs sdpa,flex --forward-only

The batch: ``--pairs`` synthetic prompt + chosen + rejected groups of random token ids, lengths drawn
(seeded) around the HH sample's (prompt ~120 tokens, responses ~46), packed into rows of
``--tokens-per-row``. The model: a Qwen2 of the shape bench/dpo_sides.py names (random weights, fp32, bf16
autocast on CUDA as in the training loop), rebuilt with the same seed for each setting so every setting
scores identical weights; each setting's log-probs are compared with the first's. Loss = Σ wᵢ·logpᵢ with
fixed weights, so the backward pass has the training step's shape without the objective. Prints one JSON
object: per setting the median and each iteration's milliseconds, real tokens/s, the first iteration's time
(the compile time for compiled settings), peak memory on CUDA.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/ (dpo_sides.MODELS)
sys.path.insert(0, str(HERE.parent.parent / "src"))

from dpo_sides import MODELS  # noqa: E402

CONFIGS = {"sdpa": ("sdpa", False), "flex": ("flex", False), "sdpa+compile": ("sdpa", True)}
CONFIGS["flex+compile"] = ("flex", True)


def synthetic_lengths(pairs: int, seed: int) -> list[tuple[int, int, int]]:
    """(prompt, chosen, rejected) token counts around the HH sample's means, within 512 per completion."""
    import random

    rng = random.Random(seed)
    return [(rng.randint(40, 200), rng.randint(10, 82), rng.randint(10, 82)) for _ in range(pairs)]


def build_batch(lengths: list[tuple[int, int, int]], vocab: int, tokens_per_row: int, seed: int) -> Any:
    import torch

    from alignlab.data.batching import make_batch
    from alignlab.data.records import Record
    from alignlab.data.tokenize import TokenizedGroup

    gen = torch.Generator().manual_seed(seed)
    ids = lambda n: torch.randint(3, vocab, (n,), generator=gen).tolist()  # noqa: E731
    groups, records = [], []
    for i, (p, c, r) in enumerate(lengths):
        groups.append(TokenizedGroup(ids(p), [ids(c), ids(r)], [[], []], ["", ""], i))
        records.append(Record(f"p{i}", ["chosen", "rejected"], ranking=[0, 1]))
    return make_batch(records, groups, "packed", tokens_per_row=tokens_per_row)


def build_model(name: str, vocab: int, device: str, seed: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    shape = dict(MODELS[name])
    shape["vocab_size"] = shape["vocab_size"] or vocab
    config = Qwen2Config(**shape, tie_word_embeddings=True, max_position_embeddings=8192)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").to(device)


def time_config(args: argparse.Namespace, setting: str, batch: Any, weights: Any) -> dict[str, Any]:
    import torch

    from alignlab.scoring.engine import Engine

    attention, compile = CONFIGS[setting]
    cuda = args.device == "cuda"
    model = build_model(args.model, args.vocab, args.device, args.seed)
    engine = Engine("packed", attention=attention, compile=compile)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    grad = torch.no_grad() if args.forward_only else nullcontext()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times, logps = [], None
    for _ in range(args.warmup + args.iters):
        model.zero_grad(set_to_none=True)
        t = time.perf_counter()
        with grad:
            with autocast:
                scores = engine(model, batch, set())
            if not args.forward_only:
                (scores.logps.float() * weights).sum().backward()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        logps = scores.logps.detach().float().cpu()
    timed = times[args.warmup :]
    median = statistics.median(timed)
    result = {
        "attention": attention,
        "compile": compile,
        "median_ms": 1000 * median,
        "each_ms": [round(1000 * t, 2) for t in timed],
        "first_iteration_s": times[0],
        "real_tokens_per_s": batch_tokens(batch) / median,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if cuda else None,
    }
    del model, engine
    return {**result, "_logps": logps}


def batch_tokens(batch: Any) -> int:
    """Real (non-pad) tokens in the batch: the prompt once per group, every completion."""
    return int(batch.num_tokens)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument("--model", choices=sorted(MODELS), default="qwen0.5b")
    ap.add_argument(
        "--vocab", type=int, default=4096, help="token ids drawn below this (and tiny/micro vocab)"
    )
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--tokens-per-row", type=int, default=2048)
    ap.add_argument(
        "--configs", default="sdpa,flex,sdpa+compile,flex+compile", help=f"from {sorted(CONFIGS)}"
    )
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forward-only", action="store_true", help="no backward (flex on CPU has none)")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="start no new setting after this many seconds (partial JSON)",
    )
    args = ap.parse_args(argv)
    settings = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in settings if c not in CONFIGS]
    if unknown or not settings:
        ap.error(f"--configs: unknown {unknown}; choose from {sorted(CONFIGS)}")
    if args.iters < 1 or args.warmup < 0 or args.pairs < 1:
        ap.error("--iters and --pairs must be >= 1, --warmup >= 0")

    import torch

    lengths = synthetic_lengths(args.pairs, args.seed)
    batch = build_batch(lengths, args.vocab, args.tokens_per_row, args.seed).to(args.device)
    weights = torch.linspace(-1, 1, batch.num_completions, device=args.device)
    report: dict[str, Any] = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "model": args.model,
        "pairs": args.pairs,
        "lengths": lengths,
        "rows": int(batch.input_ids.shape[0]),
        "row_length": int(batch.input_ids.shape[1]),
        "real_tokens": batch_tokens(batch),
        "forward_only": args.forward_only,
        "precision": "bf16 autocast, fp32 weights" if args.device == "cuda" else "fp32",
        "settings": {},
    }
    first, start = None, time.perf_counter()
    for setting in settings:
        if args.budget_s is not None and time.perf_counter() - start > args.budget_s:
            report["settings"][setting] = {"error": f"not started: over --budget-s {args.budget_s:.0f}"}
            continue
        try:
            result = time_config(args, setting, batch, weights)
        except Exception as err:  # noqa: BLE001  (one setting failing must not lose the others)
            report["settings"][setting] = {"error": f"{type(err).__name__}: {err}"[:2000]}
            continue
        logps = result.pop("_logps")
        first = logps if first is None else first
        result["max_abs_logp_diff_vs_first"] = float((logps - first).abs().max())
        report["settings"][setting] = result
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
