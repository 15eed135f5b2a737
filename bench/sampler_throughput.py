"""Benchmark: the ``hf`` sampler against ``model.generate``, n samples per prompt, same model and prompts.

    python bench/sampler_throughput.py                                  # SmolLM2-135M (built-in), n = 8
    python bench/sampler_throughput.py --model tiny:llama --json        # no wheel needed
    python bench/sampler_throughput.py --lengths forced --max-new-tokens 64

Both sides get the same prompt token ids (chat prompts encoded as the trainer encodes them, padded to
``--prompt-tokens`` by repeating a sentence), the same n, max_new_tokens and sampling settings (temperature
1, no top-k/top-p: ``generate`` is told ``top_k=0``, as its default of 50 would filter), one torch thread
unless ``--threads``, in one process, the sides alternating over ``--repeats`` (contention on a shared
machine hits both alike); medians are reported.

``--lengths natural``: each sample ends at EOS or max_new_tokens (what a user runs; ``generate`` keeps
every row of its batch until the last one ends, the sampler drops finished rows). ``--lengths forced``:
every sample has exactly max_new_tokens tokens (``generate``: ``min_new_tokens = max_new_tokens``; the
sampler: ``ignore_eos``), so both sides do the same number of decoding steps.

Measured: completions/s and generated tokens/s per side, and the ratio sampler / generate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

QUESTION = (
    "What is {a} + {b}? Answer with the number only, and explain in one short sentence why it is right."
)


def load(model_path: str) -> tuple[Any, Any]:
    from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

    settings = ModelSettings(path=model_path, device="cpu")
    model = load_causal_lm(settings, for_training=False)
    model.eval()
    return model, load_tokenizer(settings)


def make_prompts(tokenizer: Any, count: int, tokens: int) -> list[list[int]]:
    """``count`` chat prompts of about ``tokens`` tokens each, encoded as the trainer encodes them."""
    from alignlab.data.tokenize import encode_prompt

    out = []
    for i in range(count):
        text = QUESTION.format(a=i % 10, b=(3 * i + 1) % 10)
        ids = encode_prompt(tokenizer, [{"role": "user", "content": text}])[0]
        while len(ids) < tokens:
            text += " Please be brief."
            ids = encode_prompt(tokenizer, [{"role": "user", "content": text}])[0]
        out.append(ids)
    return out


def run_sampler(
    model: Any, tokenizer: Any, prompts: list[list[int]], args: argparse.Namespace, seed: int
) -> dict:
    from alignlab.generation import SamplingParams, build_sampler

    params = SamplingParams(
        n=args.n, max_new_tokens=args.max_new_tokens, seed=seed, ignore_eos=args.lengths == "forced"
    )
    sampler = build_sampler("hf", model, tokenizer, batch_size=args.n * len(prompts))
    start, cpu = time.perf_counter(), time.process_time()
    rollouts = sampler.sample(prompts, params)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "completions": len(rollouts),
        "tokens": sum(len(r.completion_ids) for r in rollouts),
    }


def run_generate(
    model: Any, tokenizer: Any, prompts: list[list[int]], args: argparse.Namespace, seed: int
) -> dict:
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    forced = {"min_new_tokens": args.max_new_tokens} if args.lengths == "forced" else {}
    torch.manual_seed(seed)
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            num_return_sequences=args.n,
            max_new_tokens=args.max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            **forced,
        )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    completions = out[:, width:]
    eos = tokenizer.eos_token_id
    tokens = 0
    for row in completions.tolist():  # up to and including the first EOS
        tokens += row.index(eos) + 1 if eos in row else len(row)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "completions": int(completions.shape[0]),
        "tokens": tokens,
    }


def summarise(runs: list[dict]) -> dict[str, Any]:
    """Medians over repeats, per wall-clock second and per CPU second of the process (with one thread the
    CPU time is the work done, which a busy shared machine disturbs far less than the wall time)."""
    return {
        "seconds_median": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in runs),
        "completions_per_s": statistics.median(r["completions"] / r["seconds"] for r in runs),
        "completions_per_cpu_s": statistics.median(r["completions"] / r["cpu_seconds"] for r in runs),
        "tokens_per_s": statistics.median(r["tokens"] / r["seconds"] for r in runs),
        "generated_tokens_each_repeat": [r["tokens"] for r in runs],
        "seconds_each_repeat": [round(r["seconds"], 2) for r in runs],
        "cpu_seconds_each_repeat": [round(r["cpu_seconds"], 2) for r in runs],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", default="builtin:smollm2-135m-instruct", help="model.path (tiny:llama needs no wheel)"
    )
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=45)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--lengths", choices=("natural", "forced"), default="natural")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = ap.parse_args(argv)
    for flag in ("prompts", "prompt_tokens", "n", "max_new_tokens", "repeats", "threads"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1")

    import torch

    torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model)
    prompts = make_prompts(tokenizer, args.prompts, args.prompt_tokens)
    sides = {"sampler": run_sampler, "generate": run_generate}
    for run in sides.values():  # warm-up, untimed
        run(model, tokenizer, prompts[:1], argparse.Namespace(**{**vars(args), "max_new_tokens": 4}), 0)
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for repeat in range(args.repeats):
        for name, run in sides.items():
            runs[name].append(run(model, tokenizer, prompts, args, seed=repeat))
    report = {
        "model": args.model,
        "prompts": args.prompts,
        "prompt_tokens": [len(p) for p in prompts],
        "n": args.n,
        "max_new_tokens": args.max_new_tokens,
        "lengths": args.lengths,
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "sampler": summarise(runs["sampler"]),
        "generate": summarise(runs["generate"]),
    }
    report["ratio_completions_per_s"] = (
        report["sampler"]["completions_per_s"] / report["generate"]["completions_per_s"]
    )
    report["ratio_tokens_per_s"] = report["sampler"]["tokens_per_s"] / report["generate"]["tokens_per_s"]
    report["ratio_completions_per_cpu_s"] = (
        report["sampler"]["completions_per_cpu_s"] / report["generate"]["completions_per_cpu_s"]
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name in sides:
            s = report[name]
            print(
                f"{name:9s} {s['completions_per_s']:8.2f} completions/s {s['tokens_per_s']:9.1f} tokens/s "
                f"{s['completions_per_cpu_s']:8.2f} completions/CPU-s "
                f"(median of {args.repeats}: {s['seconds_median']:.2f} s, {s['cpu_seconds_median']:.2f} CPU-s)"
            )
        print(
            f"sampler / generate: {report['ratio_completions_per_s']:.2f}x completions/s, "
            f"{report['ratio_completions_per_cpu_s']:.2f}x completions per CPU second"
        )
    return report


if __name__ == "__main__":
    main()
