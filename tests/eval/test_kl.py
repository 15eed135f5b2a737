"""KL(π ‖ π_ref) from rollouts is scored on the sampled ids: no EOS for samples cut at max_new_tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.eval.kl import rollout_kl
from alignlab.generation import SamplingParams, build_sampler
from alignlab.models.tiny import tiny_model

PROMPTS = ["add two and three", "sort 3 1 2", "hello", "the longest word is"]


def summed_logp(model, prompt_ids, completion_ids) -> float:
    """Σ log softmax(z)[y_t] over the completion, from one plain forward (float64)."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + completion_ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    start = len(prompt_ids) - 1
    return sum(float(logp[start + t, y]) for t, y in enumerate(completion_ids))


def test_rollout_kl_scores_exactly_the_sampled_ids() -> None:
    policy, tokenizer = tiny_model("llama", seed=0)
    reference, _ = tiny_model("llama", seed=1)
    rollouts = build_sampler("hf", policy, tokenizer).sample(
        PROMPTS, SamplingParams(n=4, max_new_tokens=6, seed=0)
    )
    cut = [r for r in rollouts if not r.finished]
    assert cut and all(tokenizer.eos_token_id not in r.completion_ids for r in cut)
    diffs = np.array(
        [
            summed_logp(policy, r.prompt_ids, r.completion_ids)
            - summed_logp(reference, r.prompt_ids, r.completion_ids)
            for r in rollouts
        ]
    )
    mean, se = rollout_kl(policy, reference, rollouts, pad_id=tokenizer.pad_token_id)
    assert mean == pytest.approx(diffs.mean(), abs=1e-5)
    assert se == pytest.approx(diffs.std(ddof=1) / np.sqrt(len(diffs)), abs=1e-5)


def test_rollout_kl_refuses_samples_of_another_distribution() -> None:
    policy, tokenizer = tiny_model("llama", seed=0)
    rollouts = build_sampler("hf", policy, tokenizer).sample(
        PROMPTS[:1], SamplingParams(n=2, max_new_tokens=3, temperature=0.7)
    )
    with pytest.raises(ValueError, match="needs samples of π itself"):
        rollout_kl(policy, policy, rollouts)
