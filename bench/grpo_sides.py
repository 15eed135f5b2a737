"""The two sides of ``bench/grpo_throughput.py``: shared set-up, then one timed GRPO run per process.

Each side runs in its own process (``python bench/grpo_sides.py SPEC.json RESULT.json``) so that its peak
memory (``dpo_sides.Meter``: CUDA ``max_memory_allocated`` or the process's peak RSS) is its own.

``prepare`` builds what both sides read: a byte-level BPE tokenizer trained on the HH-RLHF sample, the
``tiny`` Qwen2-shaped model with random weights (``dpo_sides.MODELS``), and two prompt sets — ``hh``: HH
dialogues up to their last "Assistant:" (~120 tokens), ``short``: the last human turn alone (~15 tokens).
**Forced completion lengths**: the tokenizer's EOS is a special token added after the model's vocabulary,
so the model can never emit it and every completion on both sides is exactly ``max_new_tokens`` long (the
same work on both sides, whatever the random weights prefer). The reward is one rule, ``rule_reward``,
called by both sides on the decoded completion.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dpo_sides import MODELS, Meter, run_one_side, split_pairs, train_tokenizer, trl_training_args  # noqa: E402

UNREACHABLE_EOS = "<|eos_never_sampled|>"
PROMPT_SETS = ("hh", "short")
HUMAN = "\n\nHuman:"


def rule_reward(prompt: Any, completion: str) -> float:
    """The benchmark's rule: the share of the completion's characters that are vowels (cheap, varies)."""
    return sum(ch in "aeiouAEIOU" for ch in completion) / max(1, len(completion))


def trl_rule_reward(prompts: list[Any], completions: list[str], **kwargs: Any) -> list[float]:
    return [rule_reward(p, c) for p, c in zip(prompts, completions)]


def prepare(
    work: Path, model_name: str, vocab: int, prompts: int, seed: int = 0, tokenizer_pairs: int | None = None
) -> dict[str, Any]:
    """Tokenizer (EOS outside the model's vocabulary), model and the two prompt sets under ``work``.
    ``tokenizer_pairs``: train the tokenizer on the first that many HH pairs only (smoke runs)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    work.mkdir(parents=True, exist_ok=True)
    pairs = split_pairs()
    tokenizer = train_tokenizer(pairs[:tokenizer_pairs] if tokenizer_pairs else pairs, vocab)
    model_vocab = len(tokenizer)
    tokenizer.add_special_tokens({"eos_token": UNREACHABLE_EOS})
    assert tokenizer.eos_token_id >= model_vocab
    model_dir = work / "model"
    tokenizer.save_pretrained(model_dir)

    def n_tokens(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    sets: dict[str, list[str]] = {"hh": [], "short": []}
    for p in pairs:
        prompt = p["prompt"]
        if len(sets["hh"]) < prompts and 100 <= n_tokens(prompt) <= 140:
            sets["hh"].append(prompt)
        last_human = prompt[prompt.rfind(HUMAN) :]
        if len(sets["short"]) < prompts and 8 <= n_tokens(last_human) <= 24:
            sets["short"].append(last_human)
    summary: dict[str, Any] = {}
    for name, texts in sets.items():
        with open(work / f"prompts_{name}.jsonl", "w", encoding="utf-8") as f:
            for text in texts:
                f.write(json.dumps({"prompt": text}) + "\n")
        summary[f"{name}_prompts"] = len(texts)
        summary[f"{name}_mean_prompt_tokens"] = sum(n_tokens(t) for t in texts) / len(texts)
    shape = dict(MODELS[model_name])
    # the tokenizer's vocabulary for every shape (qwen0.5b too): its EOS then lies outside the model's, so
    # completions have forced lengths, and every sampled id decodes
    shape["vocab_size"] = model_vocab
    config = Qwen2Config(
        **shape,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(model_dir, safe_serialization=True)
    return {
        **summary,
        "tokenizer_vocab": model_vocab,
        "model": model_name,
        "model_shape": shape,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


# ------------------------------------------------------------------------------------------------ TRL
def run_trl(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """TRL's GRPOTrainer.train() as a user runs it (transformers generate, its defaults), with the time in
    ``_generate`` (generation) and the rest of ``_generate_and_score_completions`` (scoring: rewards,
    reference log-probs when β > 0, advantages) recorded per step; the rest of the step is the update."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    work = Path(spec["work"])
    gpu = spec["device"] == "cuda"
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    model = AutoModelForCausalLM.from_pretrained(work / "model", dtype=torch.float32).to(spec["device"])
    dataset = load_dataset("json", data_files=str(work / f"prompts_{spec['prompts']}.jsonl"), split="train")
    settings = {
        "per_device_train_batch_size": spec["prompts_per_step"] * spec["group_size"],
        "num_generations": spec["group_size"],
        "max_completion_length": spec["max_new_tokens"],
        "temperature": 1.0,
        "beta": spec["beta"],
        "bf16": gpu,
        "gradient_checkpointing": False,
        "learning_rate": 1e-6,
        "lr_scheduler_type": "constant",
        "max_steps": spec["warmup"] + spec["steps"],
        "log_completions": False,
        **spec.get("trl_config", {}),
    }
    args = trl_training_args(GRPOConfig, work / f"run-trl-{os.getpid()}", gpu, settings)
    t0 = time.perf_counter()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=trl_rule_reward,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    meter.sync()
    setup_s = time.perf_counter() - t0

    phases: list[dict[str, float]] = []
    generate, generate_and_score = trainer._generate, trainer._generate_and_score_completions

    def timed_generate(*a: Any, **k: Any) -> Any:
        t, cpu = time.perf_counter(), time.process_time()
        out = generate(*a, **k)
        meter.sync()
        phases[-1]["generation_s"] += time.perf_counter() - t
        phases[-1]["generation_cpu_s"] += time.process_time() - cpu
        return out

    def timed_generate_and_score(*a: Any, **k: Any) -> Any:
        phases.append(_new_phase())
        t, cpu = time.perf_counter(), time.process_time()
        out = generate_and_score(*a, **k)
        meter.sync()
        phases[-1]["rollout_s"] = time.perf_counter() - t
        phases[-1]["rollout_cpu_s"] = time.process_time() - cpu
        phases[-1]["completions"] = int(out["completion_ids"].shape[0])
        phases[-1]["tokens"] = int(out["completion_mask"].sum())
        return out

    trainer._generate = timed_generate
    trainer._generate_and_score_completions = timed_generate_and_score
    ends: list[float] = []
    cpu_ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            meter.sync()
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())

    trainer.add_callback(StepClock())
    t_train, cpu_train = time.perf_counter(), time.process_time()
    trainer.train()
    starts, cpu_starts = [t_train, *ends[:-1]], [cpu_train, *cpu_ends[:-1]]
    steps = [
        {"step_s": end - start, "cpu_s": cpu_end - cpu_start, **phase}
        for start, end, cpu_start, cpu_end, phase in zip(starts, ends, cpu_starts, cpu_ends, phases)
    ][spec["warmup"] :]
    return {
        "path": "trl.GRPOTrainer.train (HF Trainer loop; transformers generate), timed from one on_step_end "
        "to the next; generation = _generate, scoring = the rest of _generate_and_score_completions",
        "setup_s": setup_s,
        "settings": settings,
        **rates(steps),
    }


def _new_phase() -> dict[str, float]:
    return {
        "generation_s": 0.0,
        "rollout_s": 0.0,
        "generation_cpu_s": 0.0,
        "rollout_cpu_s": 0.0,
        "completions": 0,
        "tokens": 0,
    }


def rates(steps: list[dict[str, float]]) -> dict[str, Any]:
    """Per-step phases -> totals and rates: steps/s, completions/s, generated tokens/s, the breakdown."""
    total = sum(s["step_s"] for s in steps)
    generation = sum(s["generation_s"] for s in steps)
    scoring = sum(s["rollout_s"] - s["generation_s"] for s in steps)
    step_times = sorted(s["step_s"] for s in steps)
    cpu = sum(s.get("cpu_s", 0.0) for s in steps)
    generation_cpu = sum(s["generation_cpu_s"] for s in steps)
    scoring_cpu = sum(s["rollout_cpu_s"] - s["generation_cpu_s"] for s in steps)
    return {
        # the process's CPU seconds per step: with one thread the work done, which a busy shared machine
        # disturbs far less than the wall time (on a GPU it is only the host's share)
        "cpu_s_per_step": cpu / len(steps),
        "steps_per_cpu_s": len(steps) / cpu if cpu > 0 else 0.0,
        "timed_steps": len(steps),
        "step_s_median": step_times[len(step_times) // 2],
        "steps_per_s": len(steps) / total,
        "completions_per_s": sum(s["completions"] for s in steps) / total,
        "generated_tokens_per_s": sum(s["tokens"] for s in steps) / total,
        "completion_tokens_per_step": sum(s["tokens"] for s in steps) / len(steps),
        "breakdown_s_per_step": {
            "generation": generation / len(steps),
            "scoring": scoring / len(steps),
            "update": (total - generation - scoring) / len(steps),
        },
        # the same phases in the process's CPU seconds (the steadier figure on a shared machine)
        "breakdown_cpu_s_per_step": {
            "generation": generation_cpu / len(steps),
            "scoring": scoring_cpu / len(steps),
            "update": (cpu - generation_cpu - scoring_cpu) / len(steps),
        },
    }


# ------------------------------------------------------------------------------------------- alignlab
def run_alignlab(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """alignlab's own loop step, ``Trainer._step``: ``source.next()`` (a rollout refresh when due: sample,
    judge, no-grad scoring, advantages) then ``Trainer.train_step`` (engine, grpo loss, backward, AdamW).
    generation = the sampler's ``sample``; scoring = the rest of the refresh; update = ``train_step``."""
    from alignlab.config import RunConfig
    from alignlab.judges.rules import RuleJudge
    from alignlab.train.trainer import Trainer

    work = Path(spec["work"])
    gpu = spec["device"] == "cuda"
    prompts_per_step, n = spec["prompts_per_step"], spec["group_size"]
    config = RunConfig.model_validate(
        {
            "name": "bench",
            "out": str(work / f"run-alignlab-{os.getpid()}"),
            "model": {"path": str(work / "model"), "dtype": "float32", "device": spec["device"]},
            "objectives": [{"name": "grpo", "kl_coef": spec["beta"], "epsilon": 0.2}],
            "online": {
                "prompts": str(work / f"prompts_{spec['prompts']}.jsonl"),
                "prompts_per_rollout": prompts_per_step,
                "sampling": {"n": n, "max_new_tokens": spec["max_new_tokens"], "temperature": 1.0},
                "judge": {"name": "verifiable_answer"},  # replaced below by the bench's rule
                "epochs_per_rollout": 1,
                "minibatches": 1,
                "log_samples_every": 0,
                **spec.get("alignlab_online", {}),
            },
            "train": {
                "batch_size": prompts_per_step,
                "steps": spec["warmup"] + spec["steps"],
                "learning_rate": 1e-6,
                "schedule": "constant",
                "mixed_precision": "bf16" if gpu else "no",
                "progress": False,
                **spec.get("alignlab_train", {}),
            },
        }
    )
    trainer = Trainer(config)
    t0 = time.perf_counter()
    trainer._setup()
    meter.sync()
    setup_s = time.perf_counter() - t0
    source = trainer.source
    source.judge = RuleJudge(rule_reward, name="bench_rule")  # the same rule as TRL's reward function

    phases: list[dict[str, float]] = []
    sample, refresh = source.sampler.sample, source.refresh

    def timed_sample(*a: Any, **k: Any) -> Any:
        t, cpu = time.perf_counter(), time.process_time()
        out = sample(*a, **k)
        meter.sync()
        phases[-1]["generation_s"] += time.perf_counter() - t
        phases[-1]["generation_cpu_s"] += time.process_time() - cpu
        phases[-1]["completions"] += len(out)
        phases[-1]["tokens"] += sum(len(r.completion_ids) for r in out)
        return out

    def timed_refresh(*a: Any, **k: Any) -> Any:
        t, cpu = time.perf_counter(), time.process_time()
        out = refresh(*a, **k)
        meter.sync()
        phases[-1]["rollout_s"] += time.perf_counter() - t
        phases[-1]["rollout_cpu_s"] += time.process_time() - cpu
        return out

    source.sampler.sample, source.refresh = timed_sample, timed_refresh
    profiler = None
    steps = []
    for step in range(1, spec["warmup"] + spec["steps"] + 1):
        if step == spec["warmup"] + 1 and spec.get("profile"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        phases.append(_new_phase())
        t, cpu = time.perf_counter(), time.process_time()
        trainer._step(step)  # source.next() (a refresh when due) -> train_step -> callbacks -> source
        meter.sync()
        steps.append({"step_s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, **phases[-1]})
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(work / f"alignlab-{spec['prompts']}-beta{spec['beta']}.prof"))
    return {
        "path": "alignlab.train.trainer.Trainer._step: RolloutSource.next (refresh: sample -> judge -> no-grad "
        "scoring -> advantages) + Trainer.train_step (engine -> grpo -> backward -> AdamW)",
        "setup_s": setup_s,
        "sampler": type(source.sampler).__name__,
        "settings": {
            "online": config.online.model_dump(mode="json") if config.online else None,
            "tokens_per_row": config.train.tokens_per_row,
            **spec.get("alignlab_train", {}),
        },
        **rates(steps[spec["warmup"] :]),
    }


def main(spec_path: str, result_path: str) -> int:
    return run_one_side(spec_path, result_path, {"alignlab": run_alignlab, "trl": run_trl})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
