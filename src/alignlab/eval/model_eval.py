"""The token-level diagnostics of ``alignlab eval model`` computed from saved models: each response is tokenised
after its prompt (the sampler's prompt encoding) and run once through the model (:func:`response_states`).

- ``topk_overopt_indicators``: the model's own samples, its logits at each generated position.
- ``token_distribution_shift``: the aligned model's greedy decoding, the base model's logits at the same prefixes.
- ``ches``: the model's hidden states on each labelled pair's chosen and rejected response.
- ``likelihood_displacement``: log π(y⁺|x) and log π(y⁻|x) under the model before (``--base``) and after training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.eval.displacement import likelihood_displacement
from alignlab.eval.registry import MetricError
from alignlab.eval.token_metrics import (
    ches,
    response_states,
    token_distribution_shift,
    topk_overopt_indicators,
)
from alignlab.eval.uncertainty import MetricResult


def encode(tokenizer: Any, prompt: Any, response: str) -> tuple[list[int], list[int]]:
    from alignlab.generation.hf import encode_sampler_prompts

    prompt_ids = encode_sampler_prompts(tokenizer, [prompt])[0]
    return prompt_ids, tokenizer(response, add_special_tokens=False)["input_ids"]


def sample(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids) of one sample per prompt (empty completions left out)."""
    from alignlab.generation import SamplingParams, build_sampler

    params = SamplingParams(n=1, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    rollouts = build_sampler("hf", model, tokenizer).sample(list(prompts), params)
    return [(r.prompt_ids, r.completion_ids) for r in rollouts if r.completion_ids]


def topk_from_model(
    model: Any, tokenizer: Any, prompts: Sequence[Any], k: int, max_new_tokens: int, seed: int
) -> MetricResult:
    logits = [
        response_states(model, p, c)[1].numpy()
        for p, c in sample(model, tokenizer, prompts, max_new_tokens, seed)
    ]
    return topk_overopt_indicators(logits=logits, k=k)


def shift_from_models(
    aligned: Any, base: Any, tokenizer: Any, prompts: Sequence[Any], max_new_tokens: int, seed: int
) -> MetricResult:
    tokens, base_logits, aligned_logits = [], [], []
    # URIAL decodes the aligned model greedily, then reads the base model's ranks at the same prefixes.
    for p, c in sample(aligned, tokenizer, prompts, max_new_tokens, seed, temperature=0.0):
        tokens.append(c)
        base_logits.append(response_states(base, p, c)[1].numpy())
        aligned_logits.append(response_states(aligned, p, c)[1].numpy())
    result = token_distribution_shift(tokens=tokens, base_logits=base_logits, aligned_logits=aligned_logits)
    result.details["shifted_tokens"] = [
        [tokenizer.convert_ids_to_tokens(int(i)), n] for i, n in result.details["shifted_tokens"]
    ]
    return result


def _pair_ids(tokenizer: Any, i: int, prompt: Any, c: str, r: str) -> tuple[list[int], list[int], list[int]]:
    pc, ic = encode(tokenizer, prompt, c)
    _, ir = encode(tokenizer, prompt, r)
    for side, ids in (("chosen", ic), ("rejected", ir)):
        if not ids:
            raise MetricError(f"pair {i}: the {side} response is empty (no tokens to read); remove or fix it")
    return pc, ic, ir


def ches_from_model(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    chosen: Sequence[str],
    rejected: Sequence[str],
    length_normalize: bool = False,
) -> MetricResult:
    hc, hr = [], []
    for i, (prompt, c, r) in enumerate(zip(prompts, chosen, rejected)):
        pc, ic, ir = _pair_ids(tokenizer, i, prompt, c, r)
        hc.append(response_states(model, pc, ic)[0].numpy())
        hr.append(response_states(model, pc, ir)[0].numpy())
    return ches(chosen_states=hc, rejected_states=hr, length_normalize=length_normalize)


def sequence_logp(model: Any, prompt_ids: list[int], response_ids: list[int]) -> float:
    logits = response_states(model, prompt_ids, response_ids)[1].numpy()
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(logp[np.arange(len(response_ids)), response_ids].sum())


def displacement_from_models(
    before: Any,
    after: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    chosen: Sequence[str],
    rejected: Sequence[str],
) -> MetricResult:
    cols: dict[str, list[float]] = {k: [] for k in ("cb", "ca", "rb", "ra")}
    first_before, first_after = [], []
    for i, (prompt, c, r) in enumerate(zip(prompts, chosen, rejected)):
        pc, ic, ir = _pair_ids(tokenizer, i, prompt, c, r)
        cols["cb"].append(sequence_logp(before, pc, ic))
        cols["ca"].append(sequence_logp(after, pc, ic))
        cols["rb"].append(sequence_logp(before, pc, ir))
        cols["ra"].append(sequence_logp(after, pc, ir))
        for model, out in ((before, first_before), (after, first_after)):
            lg = response_states(model, pc, ic)[1][0].numpy()
            e = np.exp(lg - lg.max())
            out.append(e / e.sum())
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(first_before[0]))))
    return likelihood_displacement(
        logp_chosen_before=cols["cb"],
        logp_chosen_after=cols["ca"],
        logp_rejected_before=cols["rb"],
        logp_rejected_after=cols["ra"],
        next_token_probs_before=first_before,
        next_token_probs_after=first_after,
        vocabulary=vocab,
    )
