"""The two sides of ``bench/sft_rm_throughput.py``: one timed SFT or reward-model run per process.

``python bench/sft_rm_sides.py SPEC.json RESULT.json``. Each side runs in its own process so that peak memory
(CUDA ``max_memory_allocated``, or the process's peak RSS on CPU) belongs to that side alone. The data, the
tokenizer and the random weights come from ``dpo_sides.prepare`` plus ``prepare_task`` in the driver.

- ``sft``: alignlab's ``Trainer.train_step`` with objective ``sft`` on demonstrations (prompt + chosen) against
  TRL's ``SFTTrainer`` on the same prompt/completion rows (completion-only loss, its default for that data).
- ``rm``: alignlab's ``Trainer.train_step`` with objective ``bt`` on a reward model (the causal LM's body + a
  linear head, last-token pooling) against TRL's ``RewardTrainer`` on ``AutoModelForSequenceClassification``
  (``num_labels=1``) of the same body and the same initial head.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dpo_sides import Meter, run_one_side, timed_alignlab_steps, timed_trl_train, trl_training_args

# What one "item" of a step is, per task: an SFT example (prompt + completion) or a preference pair.
UNITS = {"sft": "examples", "rm": "pairs"}
UNIT_SINGULAR = {"sft": "example", "rm": "pair"}


def alignlab_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The run config alignlab trains with: the same model file, data and batch as the TRL side."""
    work = Path(spec["work"])
    gpu = spec["device"] == "cuda"
    model: dict[str, Any] = {"path": str(work / "model"), "dtype": "float32", "device": spec["device"]}
    if spec["task"] == "sft":
        train_file, objectives = work / "sft_records.jsonl", [{"name": "sft"}]
    else:  # a new reward model on the causal LM's body; the head is seeded (the driver saved the same one)
        train_file, objectives = work / "records.jsonl", [{"name": "bt"}]
        model.update(kind="reward_model", pooling="last", seed=spec["rm_seed"])
    return {
        "name": "bench",
        "out": str(work / f"run-alignlab-{spec['task']}-{os.getpid()}"),
        "model": {**model, **spec.get("alignlab_model", {})},
        "data": {
            "train": str(train_file),
            "format": "alignlab",
            "max_length": spec["max_length"],
            "max_prompt_length": spec["max_length"],
        },
        "objectives": objectives,
        "train": {
            "batch_size": spec["batch"],
            "steps": spec["warmup"] + spec["steps"],
            "learning_rate": spec["learning_rate"],
            "schedule": "constant",
            "mixed_precision": "bf16" if gpu else "no",
            "progress": False,
            **({"tokens_per_row": spec["tokens_per_row"]} if spec.get("tokens_per_row") else {}),
            **spec.get("alignlab_train", {}),
        },
    }


def run_alignlab(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """alignlab's own loop step: make_batch -> engine -> objective -> backward -> clip -> AdamW."""
    from alignlab.config import RunConfig
    from alignlab.data.batching import make_batch
    from alignlab.train.trainer import Trainer

    config = RunConfig.model_validate(alignlab_config(spec))
    trainer = Trainer(config)
    t0 = time.perf_counter()
    trainer._setup()  # loads the model, tokenises the data, checks the packed layout
    meter.sync()
    setup_s = time.perf_counter() - t0
    extra: dict[str, Any] = {}
    if spec["task"] == "rm":
        extra["reward_head_init_sum"] = float(trainer.policy.reward_head.weight.double().sum())
        extra["model_class"] = type(trainer.policy).__name__
    data = trainer.train_data
    times, steps = timed_alignlab_steps(trainer, meter, spec["warmup"], spec["steps"])
    items = [len(ids) for ids in steps]
    tokens = [sum(data.groups[i].num_tokens for i in ids) for ids in steps]
    # The model-input positions each step ran (row tokens, padding included), laid out again untimed.
    positions = [
        make_batch(
            data.records, [data.groups[i] for i in ids], trainer.layout, config.train.tokens_per_row
        ).input_ids.numel()
        for ids in steps
    ]
    objective = "sft" if spec["task"] == "sft" else "bt"
    return {
        "path": f"alignlab.train.trainer.Trainer.train_step (make_batch -> engine -> {objective} -> backward "
        "-> clip -> AdamW)",
        "layout": trainer.layout,
        "setup_s": setup_s,
        "settings": {
            "model": config.model.model_dump(mode="json", exclude={"lora", "chat_template", "revision"}),
            "objectives": config.objectives,
            "tokens_per_row": config.train.tokens_per_row,
            "logits_chunk_size": config.train.logits_chunk_size,
            "attention": config.train.attention,
            "mixed_precision": config.train.mixed_precision,
            "learning_rate": config.train.learning_rate,
            "max_grad_norm": config.train.max_grad_norm,
            "optimizer": "torch.optim.AdamW (defaults)",
        },
        **extra,
        **rates(spec["task"], times, items, tokens, positions),
    }


def _trl_args(spec: dict[str, Any], config_class: Any, settings: dict[str, Any]) -> Any:
    output_dir = Path(spec["work"]) / f"run-trl-{spec['task']}-{os.getpid()}"
    return trl_training_args(config_class, output_dir, spec["device"] == "cuda", settings)


def _common_trl_settings(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "per_device_train_batch_size": spec["batch"],
        "max_length": spec["max_length"],
        "bf16": spec["device"] == "cuda",
        "gradient_checkpointing": False,  # TRL's configs default to True; alignlab runs without, as does the DPO bench
        "learning_rate": spec["learning_rate"],
        "lr_scheduler_type": "constant",
        "max_steps": spec["warmup"] + spec["steps"],
    }


def run_trl(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """TRL's SFTTrainer or RewardTrainer as a user would run it, timed from one on_step_end to the next."""
    import torch
    from datasets import load_dataset
    from transformers import AutoTokenizer

    work = Path(spec["work"])
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    settings = {**_common_trl_settings(spec), **spec.get("trl_config", {})}
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    if spec["task"] == "sft":
        from transformers import AutoModelForCausalLM
        from trl import SFTConfig, SFTTrainer

        model = AutoModelForCausalLM.from_pretrained(work / "model", dtype=torch.float32).to(spec["device"])
        dataset = load_dataset("json", data_files=str(work / "sft_trl.jsonl"), split="train")
        args = _trl_args(spec, SFTConfig, settings)
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        # Real tokens of an example: everything it feeds the model (prompt + completion + EOS), no padding.
        real_tokens = lambda e: len(e["input_ids"])  # noqa: E731
        resolved = {
            "completion_only_loss": trainer.completion_only_loss,
            "padding_free": trainer.padding_free,
            "packing": args.packing,
            "loss_type": args.loss_type,
            "fused_lm_head": "trl.trainer.utils.add_fused_lm_head (scores every position off Triton devices)",
        }
        path = "trl.SFTTrainer.train (HF Trainer loop), timed from one on_step_end to the next"
    else:
        from safetensors.torch import load_file
        from transformers import AutoModelForSequenceClassification
        from trl import RewardConfig, RewardTrainer

        model = AutoModelForSequenceClassification.from_pretrained(
            work / "model", num_labels=1, dtype=torch.float32
        )
        with torch.no_grad():  # the same initial head as alignlab's (its bias starts at zero; TRL's has none)
            model.score.weight.copy_(load_file(str(work / "rm_head.safetensors"))["weight"])
        model = model.to(spec["device"])
        extra["reward_head_init_sum"] = float(model.score.weight.double().sum())
        extra["model_class"] = type(model).__name__
        rows = [json.loads(line) for line in open(work / "trl.jsonl", encoding="utf-8")]
        dataset = load_dataset("json", data_files=str(work / "trl.jsonl"), split="train")
        args = _trl_args(spec, RewardConfig, settings)
        trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        # TRL writes the prompt into both sequences; the real-token count keeps it once, as the DPO bench does.
        prompt_len = {
            tuple(c): len(tokenizer(r["prompt"])["input_ids"])
            for c, r in zip(trainer.train_dataset["chosen_ids"], rows)
        }
        real_tokens = lambda e: (  # noqa: E731
            len(e["chosen_ids"]) + len(e["rejected_ids"]) - prompt_len[tuple(e["chosen_ids"])]
        )
        resolved = {"center_rewards_coefficient": args.center_rewards_coefficient}
        path = "trl.RewardTrainer.train (HF Trainer loop), timed from one on_step_end to the next"
    meter.sync()
    setup_s = time.perf_counter() - t0
    resolved.update(
        optim=str(args.optim),
        max_grad_norm=args.max_grad_norm,
        attn_implementation=model.config._attn_implementation,
        padding_side=tokenizer.padding_side,
    )

    def count(examples: list[dict[str, Any]], collated: Any) -> tuple[int, int, int]:
        # per collated batch: (items, real tokens, model-input positions)
        return len(examples), sum(real_tokens(e) for e in examples), collated["input_ids"].numel()

    times, kept = timed_trl_train(trainer, meter, spec["warmup"], count)
    return {
        "path": path,
        "setup_s": setup_s,
        "settings": {**settings, "resolved": resolved},
        **extra,
        **rates(spec["task"], times, [c[0] for c in kept], [c[1] for c in kept], [c[2] for c in kept]),
    }


def rates(
    task: str, times: list[float], items: list[int], tokens: list[int], positions: list[int]
) -> dict[str, Any]:
    """Items/s and real tokens/s over the timed steps; the median step; model-input positions per item."""
    total, n = sum(times), max(1, sum(items))
    per_step = sorted(times)
    return {
        "timed_steps": len(times),
        "step_s_median": per_step[len(per_step) // 2] if per_step else None,
        f"{UNITS[task]}_per_s": sum(items) / total if total else None,
        "tokens_per_s": sum(tokens) / total if total else None,
        f"real_tokens_per_{UNIT_SINGULAR[task]}": sum(tokens) / n,
        f"positions_per_{UNIT_SINGULAR[task]}": sum(positions) / n,
    }


def main(spec_path: str, result_path: str) -> int:
    return run_one_side(spec_path, result_path, {"alignlab": run_alignlab, "trl": run_trl})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
