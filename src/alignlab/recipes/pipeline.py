"""Stages shared by the simulation recipes (quickstart, compare): train a stage, sample, label, evaluate.

Each stage trains through the one loop (``alignlab.train.trainer.train``) from a config mapping, so a
recipe is just data flowing between runs: demonstrations → SFT model → sampled pairs → simulated labels
→ reward model / preference-trained policies → gold evaluation.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignlab.config import load_config
from alignlab.data.io import write_records
from alignlab.data.records import Record
from alignlab.eval.kl import rollout_kl
from alignlab.eval.winrate import judged_win_rate
from alignlab.generation import Rollout, SamplingParams, build_sampler
from alignlab.judges.simulated import SimulatedAnnotators, gold_annotator
from alignlab.sim.worlds import TextWorld

MODEL_BASE = {"path": "tiny:llama"}
DATA_BASE = {"max_length": 64, "max_prompt_length": 32}
TRAIN_BASE = {"tokens_per_row": 256, "warmup_steps": 5, "schedule": "cosine", "log_every": 5}


@dataclass
class Stage:
    name: str
    model_dir: Path
    run_dir: Path
    seconds: float
    metrics: dict[str, Any]


def train_stage(
    name: str,
    out: Path,
    data: Path,
    model: dict[str, Any],
    objectives: list[dict[str, Any]],
    train: dict[str, Any],
    console: Any = None,
    progress: bool = True,
    online: dict[str, Any] | None = None,
) -> Stage:
    """Train one stage into ``out/name`` (replacing an earlier run there); return where its model is.
    ``online``: the run's ``online:`` section (online objectives sample their own data; ``data`` unused)."""
    run_dir = out / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    from alignlab.train.trainer import train as run_training

    config = load_config(
        None,
        [],
        base={
            "name": name,
            "out": str(run_dir),
            "model": {**MODEL_BASE, **model},
            "data": {**DATA_BASE, "train": str(data)},
            "objectives": objectives,
            # threads null: keep the recipe's own thread setting (cpu_threads) rather than train's auto
            "train": {**TRAIN_BASE, "threads": None, **train, "progress": progress},
            **({"online": online} if online is not None else {}),
        },
    )
    start = time.perf_counter()
    result = run_training(config, console=console)
    return Stage(name, result.model_dir, run_dir, time.perf_counter() - start, dict(result.metrics))


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads (restored afterwards); n <= 0 leaves torch's choice."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_policy(model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model.eval()
    return model, tokenizer


def sample(
    model: Any, tokenizer: Any, prompts: list[str], n: int, seed: int, max_new_tokens: int = 24
) -> list[Rollout]:
    """``n`` rollouts per prompt from ``model`` (temperature 1, no filters), grouped by prompt."""
    sampler = build_sampler("hf", model, tokenizer)
    return sampler.sample(prompts, SamplingParams(n=n, max_new_tokens=max_new_tokens, seed=seed))


def sample_texts(rollouts: list[Rollout]) -> list[str]:
    """The completions as the simulated world reads them (special tokens dropped, whitespace stripped)."""
    return [r.text.strip() for r in rollouts]


def sample_pairs(
    model: Any, tokenizer: Any, prompts: list[str], seed: int, max_new_tokens: int = 16, per_prompt: int = 1
) -> tuple[list[str], list[str], list[str]]:
    """``per_prompt`` pairs of fresh samples per prompt: (prompts, a, b), flat."""
    texts = sample_texts(sample(model, tokenizer, prompts, 2 * per_prompt, seed, max_new_tokens))
    n = 2 * per_prompt
    flat_p = [p for p in prompts for _ in range(per_prompt)]
    a = [texts[i * n + 2 * k] for i in range(len(prompts)) for k in range(per_prompt)]
    b = [texts[i * n + 2 * k + 1] for i in range(len(prompts)) for k in range(per_prompt)]
    return flat_p, a, b


def label_pairs(
    annotators: SimulatedAnnotators, prompts: list[str], a: list[str], b: list[str], path: Path, source: str
) -> list[Record]:
    records = annotators.pairs(prompts, a, b, source=source)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_records(records, path)
    return records


def gold_pairs(world: TextWorld, prompts: list[str], a: list[str], b: list[str]) -> list[Record]:
    """Pairs labelled by the noise-free gold annotator, ties left out (for held-out RM accuracy)."""
    gold = world.gold_reward(prompts, a) - world.gold_reward(prompts, b)
    out = []
    for p, x, y, d in zip(prompts, a, b, gold.tolist()):
        if d != 0 and x.strip() and y.strip():
            out.append(Record(p, [x, y] if d > 0 else [y, x], ranking=[0, 1], source="sim:gold"))
    return out


def evaluate_policy(
    world: TextWorld,
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    seed: int,
    reference: Any = None,
    reference_samples: list[str] | None = None,
    samples_per_prompt: int = 1,
) -> dict[str, Any]:
    """Gold reward and attributes of samples on ``prompts``; with a reference: win rate and KL to it (the KL
    scored on the sampled token ids)."""
    rollouts = sample(model, tokenizer, prompts, samples_per_prompt, seed)
    flat_prompts = [p for p in prompts for _ in range(samples_per_prompt)]
    flat = sample_texts(rollouts)
    attrs = world.attributes(flat_prompts, flat)
    gold = world.utility(attrs)
    out: dict[str, Any] = {
        "gold_reward": float(gold.mean()),
        "gold_reward_se": float(gold.std() / max(1, len(gold)) ** 0.5),
        "attributes": {k: float(v.mean()) for k, v in attrs.items()},
        "samples": flat,
        "prompts": flat_prompts,
    }
    if reference is not None:
        pad = int(tokenizer.pad_token_id or 0)
        out["kl"], out["kl_se"] = rollout_kl(model, reference, rollouts, pad_id=pad)
    if reference_samples is not None:
        wr = judged_win_rate(gold_annotator(world), flat_prompts, flat, reference_samples)
        out["winrate"] = wr.to_dict()
    return out


def proxy_scores(judge: Any, prompts: list[str], completions: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return judge.score(prompts, completions).double()
