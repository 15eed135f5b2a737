"""Quark separates its reward tags on a language model (the METHODS `quark` test, on the tiny llama): after
training with examples/quark.yaml, completions sampled after the best tag <|quark_0|> score a higher mean
reward than the start policy's, and those after the worst tag <|quark_4|> a lower one (Quark's "unlearning").
The reward is recomputed here on the decoded samples.

The task is the smallest one found where the randomly initialised tiny model learns the separation within
seconds: one-token prompts (single letters), completions of at most 2 tokens, reward = the share of digits
among the completion's characters (about 0.35 for the start policy). With the arithmetic prompts (~13 tokens)
the tiny random model did not learn to read the tag in 40 steps, nor when trained directly (supervised) to
map tag → answer: a tag at position 0 is diluted among the prompt's tokens (docs/online.md, "Quark")."""

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignlab.config import load_config
from alignlab.generation.hf import HFSampler
from alignlab.generation.types import SamplingParams
from alignlab.models.tiny import tiny_model
from alignlab.train.trainer import train

REPO = Path(__file__).resolve().parents[2]


def mean_reward(model, tokenizer, prompt_ids):
    """Mean and standard error of the digit share over 64 samples per prompt, counted by regexes here."""
    params = SamplingParams(n=64, max_new_tokens=2, seed=11)
    texts = [re.sub(r"\s", "", r.text) for r in HFSampler(model, tokenizer).sample(prompt_ids, params)]
    rewards = np.array([len(re.findall(r"[0-9]", t)) / len(t) if t else 0.0 for t in texts])
    return rewards.mean(), rewards.std(ddof=1) / np.sqrt(len(rewards))


@pytest.mark.slow
def test_best_tag_beats_worst_tag_and_start_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the example names its prompts and reward function from the repository root
    config = load_config(
        REPO / "examples" / "quark.yaml",
        [f"out={tmp_path / 'quark'}", "online.log_samples_every=0", "train.progress=false"],
    )
    assert config.train.steps == 40 and config.objectives[0]["num_quantiles"] == 5
    letters = [json.loads(line)["prompt"] for line in open(REPO / "examples/data/quark_letters.jsonl")]
    started = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    trained = AutoModelForCausalLM.from_pretrained(result.model_dir)
    start, _ = tiny_model("llama", seed=config.model.seed)
    untagged = [tokenizer(c)["input_ids"] for c in letters]
    assert all(len(ids) == 1 for ids in untagged)
    best, worst = tokenizer.convert_tokens_to_ids(["<|quark_0|>", "<|quark_4|>"])
    with torch.no_grad():
        before = mean_reward(start, tokenizer, untagged)
        after_best = mean_reward(trained, tokenizer, [[best, *ids] for ids in untagged])
        after_worst = mean_reward(trained, tokenizer, [[worst, *ids] for ids in untagged])
    print(f"trained in {seconds:.1f} s; start {before}, best tag {after_best}, worst tag {after_worst}")
    gap = lambda a, b: (a[0] - b[0]) / np.hypot(a[1], b[1])  # noqa: E731
    assert gap(after_best, after_worst) > 3, (after_best, after_worst)
    assert gap(after_best, before) > 3, (after_best, before)
    assert gap(before, after_worst) > 3, (before, after_worst)
