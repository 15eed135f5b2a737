"""The two sides of ``bench/dpo_throughput.py``: shared set-up, then one timed DPO run per process.

Each side runs in its own process (``python bench/dpo_sides.py SPEC.json RESULT.json``) so that peak
memory (CUDA ``max_memory_allocated``, or on CPU the process's peak RSS) belongs to that side alone and an
out-of-memory trial cannot disturb the next one. ``prepare`` builds what both sides read: the HH-RLHF sample
split into prompt / chosen / rejected, a byte-level BPE tokenizer trained on it, the pairs that fit in
``max_length`` without truncation, and one randomly initialised model saved with ``save_pretrained``.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
SPLIT = "\n\nAssistant:"

# name -> Qwen2Config keywords. qwen0.5b is the Qwen2.5-0.5B shape (random weights: speed does not depend on
# them); tiny is the same family scaled down so a CPU run takes minutes.
MODELS: dict[str, dict[str, Any]] = {
    "qwen0.5b": dict(
        hidden_size=896,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        intermediate_size=4864,
        vocab_size=151936,
    ),
    "tiny": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=1408,
        vocab_size=None,  # the tokenizer's size
    ),
    "micro": dict(  # smoke tests only
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=None,
    ),
}


def split_pairs(path: Path = DATA) -> list[dict[str, str]]:
    """HH-RLHF dialogues -> {prompt, chosen, rejected}: the prompt ends with the last ``Assistant:``."""
    pairs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            cut = row["chosen"].rfind(SPLIT) + len(SPLIT)
            prompt = row["chosen"][:cut]
            if cut < len(SPLIT) or not row["rejected"].startswith(prompt):
                continue
            chosen, rejected = row["chosen"][cut:], row["rejected"][cut:]
            if chosen.strip() and rejected.strip() and chosen != rejected:
                pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def train_tokenizer(pairs: list[dict[str, str]], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = (p[k] for p in pairs for k in ("prompt", "chosen", "rejected"))
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.padding_side = "right"
    return fast


def prepare(
    work: Path, model_name: str, vocab: int, max_length: int, limit: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Write tokenizer, model, alignlab records and TRL rows under ``work``; return a summary.
    ``limit``: keep only the first that many pairs that fit (smoke runs)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from alignlab.data.io import write_records
    from alignlab.data.records import pair

    work.mkdir(parents=True, exist_ok=True)
    pairs = split_pairs()
    tokenizer = train_tokenizer(pairs[: max(100, 10 * limit)] if limit else pairs, vocab)
    model_dir = work / "model"
    tokenizer.save_pretrained(model_dir)
    eos = tokenizer.eos_token
    kept, lengths = [], []
    for p in pairs:
        n_prompt = len(tokenizer(p["prompt"])["input_ids"])
        n_c = len(tokenizer(p["chosen"] + eos)["input_ids"])
        n_r = len(tokenizer(p["rejected"] + eos)["input_ids"])
        if n_prompt + max(n_c, n_r) <= max_length:  # no truncation on either side: both see the same tokens
            kept.append(p)
            lengths.append((n_prompt, n_c, n_r))
        if limit and len(kept) == limit:
            break
    write_records([pair(p["prompt"], p["chosen"], p["rejected"]) for p in kept], work / "records.jsonl")
    with open(work / "trl.jsonl", "w", encoding="utf-8") as f:
        for p in kept:
            f.write(json.dumps(p) + "\n")
    shape = dict(MODELS[model_name])
    shape["vocab_size"] = shape["vocab_size"] or len(tokenizer)
    config = Qwen2Config(
        **shape,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.save_pretrained(model_dir, safe_serialization=True)
    n = len(lengths)
    return {
        "pairs": n,
        "pairs_dropped_over_max_length": None if limit else len(pairs) - n,
        "mean_prompt_tokens": sum(x[0] for x in lengths) / n,
        "mean_response_tokens": sum(x[1] + x[2] for x in lengths) / (2 * n),
        "tokenizer_vocab": len(tokenizer),
        "model": model_name,
        "model_shape": shape,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


# --------------------------------------------------------------------------------------------- measuring
class Meter:
    """Peak memory of this process: CUDA max_memory_allocated, or peak RSS minus RSS before the models."""

    def __init__(self, device: str):
        import psutil
        import torch

        self.cuda = device == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        self.base_rss = psutil.Process().memory_info().rss

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def peak_gb(self) -> float:
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated() / 1e9
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        return (peak_rss - self.base_rss) / 1e9


def run_alignlab(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """alignlab's own loop step (Trainer.train_step) with the reference log-probs from its cache."""
    from alignlab.config import RunConfig
    from alignlab.train.trainer import Trainer

    work = Path(spec["work"])
    gpu = spec["device"] == "cuda"
    config = RunConfig.model_validate(
        {
            "name": "bench",
            "out": str(work / f"run-alignlab-{os.getpid()}"),
            "model": {"path": str(work / "model"), "dtype": "float32", "device": spec["device"]},
            # A fresh cache per run, so that every run's setup measures the cache fill (a first real run).
            "reference": {"cache_dir": str(work / f"reference-cache-{os.getpid()}")},
            "data": {
                "train": str(work / "records.jsonl"),
                "format": "alignlab",
                "max_length": spec["max_length"],
                "max_prompt_length": spec["max_length"],
            },
            "objectives": [{"name": "dpo", "beta": 0.1}],
            "train": {
                "batch_size": spec["batch"],
                "steps": spec["warmup"] + spec["steps"],
                "learning_rate": 1e-6,
                "schedule": "constant",
                "mixed_precision": "bf16" if gpu else "no",
                "progress": False,
                **({"tokens_per_row": spec["tokens_per_row"]} if spec.get("tokens_per_row") else {}),
                **spec.get("alignlab_train", {}),
            },
        }
    )
    if spec.get("alignlab_model"):
        config.model = config.model.model_copy(update=spec["alignlab_model"])
    trainer = Trainer(config)
    import alignlab.train.setup as loop_setup

    # The cache fill, inside _setup: the loop's setup calls reference_logps once per split.
    reference_clock = _time_calls(loop_setup, "reference_logps", meter)
    t0 = time.perf_counter()
    trainer._setup()  # loads the models, tokenises, fills the reference log-prob cache
    meter.sync()
    setup_s = time.perf_counter() - t0
    groups = trainer.train_data.groups
    times, steps = timed_alignlab_steps(trainer, meter, spec["warmup"], spec["steps"])
    pairs = [len(ids) for ids in steps]
    tokens = [sum(groups[i].num_tokens for i in ids) for ids in steps]
    return {
        "path": "alignlab.train.trainer.Trainer.train_step (make_batch -> engine -> dpo -> backward -> clip -> "
        "AdamW), reference log-probs from the loop's cache",
        "layout": trainer.layout,
        "setup_s_incl_reference_cache": setup_s,
        "setup_s": setup_s,
        "reference_pass_s": reference_clock.total,
        "reference_pass": "cache fill: one no-grad pass of the reference over the training data, in setup",
        "epoch_pairs": len(groups),
        "full_epoch": spec.get("full_epoch", False),
        "settings": {
            "tokens_per_row": config.train.tokens_per_row,
            "logits_chunk_size": config.train.logits_chunk_size,
            "mixed_precision": config.train.mixed_precision,
            **spec.get("alignlab_train", {}),
            **spec.get("alignlab_model", {}),
        },
        **_rates(times, pairs, tokens),
    }


class _Clock:
    """Total seconds spent inside the wrapped calls."""

    def __init__(self) -> None:
        self.total: float | None = None


def _time_calls(owner: Any, name: str, meter: Meter) -> _Clock:
    """Wrap ``owner.name`` so that the time spent in it accumulates in the returned clock (None: never called,
    or ``owner`` has no such attribute)."""
    clock = _Clock()
    original = getattr(owner, name, None)
    if original is None:
        return clock

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = original(*args, **kwargs)
        meter.sync()
        clock.total = (clock.total or 0.0) + time.perf_counter() - t
        return out

    setattr(owner, name, timed)
    return clock


def run_trl_precompute(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """TRL with ``precompute_ref_log_probs=True``: one reference pass over the data in setup, no reference
    model during training."""
    return run_trl({**spec, "trl_precompute_ref": True}, meter)


def run_trl(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """TRL's DPOTrainer as a user would run it: separate reference model, fused LM head (its default)."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    work = Path(spec["work"])
    gpu = spec["device"] == "cuda"
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    model = AutoModelForCausalLM.from_pretrained(work / "model", dtype=torch.float32).to(spec["device"])
    ref = None
    if not spec["trl_precompute_ref"]:
        ref = AutoModelForCausalLM.from_pretrained(work / "model", dtype=torch.float32).to(spec["device"])
    # A fresh datasets cache per run: TRL caches precomputed reference log-probs next to the dataset, and a
    # second run would otherwise read them instead of measuring the pass.
    dataset = load_dataset(
        "json",
        data_files=str(work / "trl.jsonl"),
        split="train",
        cache_dir=str(work / f"hf-cache-{os.getpid()}"),
    )
    reference_clock = _time_calls(DPOTrainer, "_precompute_ref_logps", meter)
    settings = {
        "per_device_train_batch_size": spec["batch"],
        "max_length": spec["max_length"],
        "bf16": gpu,
        "gradient_checkpointing": False,  # DPOConfig defaults to True; the anchor runs without
        "precompute_ref_log_probs": spec["trl_precompute_ref"],
        "learning_rate": 1e-6,
        "lr_scheduler_type": "constant",
        "beta": 0.1,
        "loss_type": ["sigmoid"],
        "padding_free": False,  # TRL 1.16: "temporarily unavailable", falls back to padding anyway
        "max_steps": spec["warmup"] + spec["steps"],
        **spec.get("trl_config", {}),
    }
    args = trl_training_args(DPOConfig, work / f"run-trl-{os.getpid()}", gpu, settings)
    t0 = time.perf_counter()
    trainer = DPOTrainer(
        model=model, ref_model=ref, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    meter.sync()
    setup_s = time.perf_counter() - t0

    def count(examples: list[dict[str, Any]], _collated: Any) -> tuple[int, int]:
        # per collated batch: (pairs, real tokens with the prompt once)
        return len(examples), sum(
            len(e["prompt_ids"]) + len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in examples
        )

    times, kept = timed_trl_train(trainer, meter, spec["warmup"], count)
    return {
        "path": "trl.DPOTrainer.train (HF Trainer loop), timed from one on_step_end to the next",
        "setup_s": setup_s,
        "reference_pass_s": reference_clock.total,
        "reference_pass": "precompute_ref_log_probs: one pass over the training data in DPOTrainer.__init__"
        if spec["trl_precompute_ref"]
        else "none: the reference model runs a forward pass inside every step",
        "epoch_pairs": len(dataset),
        "full_epoch": spec.get("full_epoch", False),
        "settings": settings,
        **_rates(times, [c[0] for c in kept], [c[1] for c in kept]),
    }


def trl_training_args(config_class: Any, output_dir: Path, gpu: bool, settings: dict[str, Any]) -> Any:
    """A TRL config for a timed run: no saving, no reporting, no dataloader workers, seed 0, ``settings``."""
    return config_class(
        output_dir=str(output_dir),
        use_cpu=not gpu,
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
        **settings,
    )


def timed_alignlab_steps(
    trainer: Any, meter: Meter, warmup: int, steps: int
) -> tuple[list[float], list[list[int]]]:
    """Run ``warmup + steps`` loop steps (``Trainer.train_step``: batch, engine, loss, backward, clip, AdamW);
    return the timed steps' times and the record ids each of them trained on."""
    times, ids_per_step = [], []
    for step in range(1, warmup + steps + 1):
        batch = trainer.source.next()
        t = time.perf_counter()
        trainer.train_step(batch, step)
        meter.sync()
        if step > warmup:
            times.append(time.perf_counter() - t)
            ids_per_step.append(batch.reference_rows)
    return times, ids_per_step


def timed_trl_train(trainer: Any, meter: Meter, warmup: int, count: Any) -> tuple[list[float], list[tuple]]:
    """Run ``trainer.train()`` and time each step after ``warmup`` from one ``on_step_end`` to the next (data,
    forward, backward and optimiser all inside); ``count(examples, collated)`` is recorded per collated batch.
    Returns the step times and the counts of those steps."""
    from transformers import TrainerCallback

    counts: list[tuple] = []
    collate = trainer.data_collator

    def counting_collator(examples: list[dict[str, Any]]) -> Any:
        out = collate(examples)
        counts.append(count(examples, out))
        return out

    trainer.data_collator = counting_collator
    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_train_begin(self, *a: Any, **k: Any) -> None:
            meter.sync()
            ends.append(time.perf_counter())  # so the first step is timed too (warmup 0: a whole epoch)

        def on_step_end(self, *a: Any, **k: Any) -> None:
            meter.sync()
            ends.append(time.perf_counter())

    trainer.add_callback(StepClock())
    trainer.train()
    times = [ends[i] - ends[i - 1] for i in range(warmup + 1, len(ends))]
    return times, counts[warmup : warmup + len(times)]


def _rates(times: list[float], pairs: list[int], tokens: list[int]) -> dict[str, Any]:
    total = sum(times)
    per_step = sorted(times)
    return {
        "timed_steps": len(times),
        "steps_s_total": total,
        "step_s_median": per_step[len(per_step) // 2] if per_step else None,
        "pairs_per_s": sum(pairs) / total if total else None,
        "tokens_per_s": sum(tokens) / total if total else None,
        "real_tokens_per_pair": sum(tokens) / max(1, sum(pairs)),
    }


def main(spec_path: str, result_path: str) -> int:
    return run_one_side(
        spec_path,
        result_path,
        {"alignlab": run_alignlab, "trl": run_trl, "trl_precompute": run_trl_precompute},
    )


def run_one_side(spec_path: str, result_path: str, runners: dict[str, Any]) -> int:
    """Run ``runners[spec["side"]]`` in this process and write its result with the peak memory (or the OOM)."""
    spec = json.loads(Path(spec_path).read_text())
    import torch

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    # Import everything first, so the RSS baseline holds the libraries and the peak measures the training.
    if spec["side"] == "alignlab":
        import alignlab.train.trainer  # noqa: F401
    else:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    meter = Meter(spec["device"])
    try:
        result = runners[spec["side"]](spec, meter)
        result["peak_memory_gb"] = meter.peak_gb()
        result["memory_measure"] = (
            "torch.cuda.max_memory_allocated"
            if meter.cuda
            else "peak RSS (ru_maxrss) minus RSS before the models"
        )
        result["oom"] = False
    except torch.OutOfMemoryError as err:
        result = {"oom": True, "error": str(err).splitlines()[0]}
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
