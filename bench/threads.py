"""How many torch CPU threads a training step should use: the same DPO step (forward + backward on one
fixed batch) timed with 1 and with all cores, the two settings alternating in one process so that the
machine's load hits both alike. Prints the median seconds per step of each, and the machine's load.

    python bench/threads.py [--model tiny:llama] [--repeats 6] [--batch 8] [--length 160]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from alignlab.models.loading import ModelSettings, load_causal_lm


def step_seconds(model: torch.nn.Module, ids: torch.Tensor, threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
    )
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny:llama")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=160)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    model = load_causal_lm(ModelSettings(path=args.model))
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.length), generator=torch.Generator().manual_seed(0))
    settings = sorted({1, cores})
    times: dict[int, list[float]] = {n: [] for n in settings}
    step_seconds(model, ids, 1)  # warm-up
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for n in settings:  # alternate, so contention hits every setting alike
            times[n].append(step_seconds(model, ids, n))
    load_after = os.getloadavg()[0]
    print(f"model {args.model}, batch {args.batch} x {args.length} tokens, {cores} cores, "
          f"load average {load_before:.1f} -> {load_after:.1f}")  # fmt: skip
    for n in settings:
        print(f"threads {n}: median {statistics.median(times[n]):.3f} s/step  (all: "
              + ", ".join(f"{t:.3f}" for t in times[n]) + ")")  # fmt: skip
    if len(settings) == 2:
        ratio = statistics.median(times[settings[1]]) / statistics.median(times[settings[0]])
        print(f"{settings[1]} threads / 1 thread: {ratio:.2f}x the time")


if __name__ == "__main__":
    main()
