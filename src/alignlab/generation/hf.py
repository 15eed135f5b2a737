"""The ``hf`` sampler: a KV-cache decoding loop over a transformers causal LM, on the model's device.

Why not ``model.generate``: with n samples per prompt, ``generate`` repeats each prompt n times and prefills
every copy; here each prompt is prefilled ONCE (logits only at its last position) and its KV cache is
expanded to its n samples. Rows that have finished leave the batch (their cache rows are dropped), and the
per-step work is one forward of the live rows plus one draw. ``bench/sampler_throughput.py`` measures it
against ``generate``.

Prompts are encoded exactly as the trainer encodes them (``alignlab.data.tokenize.encode_prompts``; a
prompt given as a list of token ids is used as is), left-padded with explicit position ids, so each row
sees exactly its own prompt. Each step's distribution, the recorded log-probs and the support rule are in
``generation/filters.py``. The same (model, prompts, params, batch_size, draw) always gives the same
rollouts: the random numbers come from a generator on the model's device seeded with ``params.seed``, and
they are drawn for every row of a chunk at every step, so a row's sample does not depend on when the others
finish. ``draw``: ``inverse_cdf`` (default; one uniform per row and step) or ``race`` (``torch.multinomial``'s
exponential race over the vocabulary, what ``generate`` does: the same samples as ``generate`` for a seed,
at the cost of [rows, vocabulary] exponential draws per step — ~13% of a SmolLM2 decoding step on CPU).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from alignlab.data.tokenize import encode_prompts
from alignlab.generation.filters import draw, filter_mask, inverse_cdf_draw, step_distribution
from alignlab.generation.kv_cache import reserve
from alignlab.generation.lean_step import LeanStep, cache_is_reserved, lean_step_supported, stateless_rotary
from alignlab.generation.types import Rollout, SamplingParams
from alignlab.models.parts import unwrap

# Drop finished rows from the batch once this share of the live rows has finished (dropping costs a copy
# of the KV cache; a finished row left in costs its share of the next forwards).
COMPACT_SHARE = 0.125
DRAWS = ("inverse_cdf", "race")
STEPS = ("auto", "lean", "transformers")


def encode_sampler_prompts(tokenizer: Any, prompts: Sequence[Any]) -> list[list[int]]:
    """Token ids of each prompt as the trainer encodes it; a list of ints is taken as already encoded."""
    out: list[list[int] | None] = [None] * len(prompts)
    to_encode = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(t, int) for t in prompt):
            out[i] = list(prompt)
        else:
            to_encode.append(i)
    for i, (ids, _) in zip(to_encode, encode_prompts(tokenizer, [prompts[i] for i in to_encode])):
        out[i] = ids
    for i, ids in enumerate(out):
        if not ids:
            raise ValueError(f"prompt {i} encodes to no tokens; the sampler needs at least one prompt token")
    return out  # type: ignore[return-value]


def stop_ids(tokenizer: Any, params: SamplingParams) -> list[int]:
    """The ids that end a sample: the tokenizer's EOS and ``params.stop_token_ids`` (none with ignore_eos)."""
    if params.ignore_eos:
        return []
    eos = tokenizer.eos_token_id
    return sorted({*([eos] if eos is not None else []), *params.stop_token_ids})


class HFSampler:
    """Samples from ``model`` itself (``sync`` points it at another module; weights are never copied).

    ``batch_size``: rows (prompts × n) decoded together; a chunk holds ``max(1, batch_size // n)`` prompts.
    ``draw``: ``inverse_cdf`` or ``race`` (see the module docstring).
    ``step``: how a decoding step runs: ``transformers`` (the model's forward), ``lean``
    (``generation/lean_step.py``: the model's own modules without the forward's per-call machinery, the same
    logits bit for bit; Llama/Qwen2 shapes only, an error otherwise) or ``auto`` (``lean`` where supported).
    """

    name = "hf"

    def __init__(
        self, model: Any, tokenizer: Any, batch_size: int = 512, draw: str = "inverse_cdf", step: str = "auto"
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if draw not in DRAWS:
            raise ValueError(f"draw must be one of {', '.join(DRAWS)}, got {draw!r}")
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.draw = draw
        self.step = step

    def sync(self, policy: Any) -> None:
        self.model = policy

    @torch.no_grad()
    def sample(self, prompts: Sequence[Any], params: SamplingParams) -> list[Rollout]:
        base = unwrap(self.model)
        device = next(base.parameters()).device
        encoded = encode_sampler_prompts(self.tokenizer, prompts)
        stops = stop_ids(self.tokenizer, params)
        if not stops and not params.ignore_eos:
            raise ValueError(
                "the tokenizer has no EOS token and params.stop_token_ids is empty: nothing ends a sample"
            )
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = stops[0] if stops else 0
        generator = torch.Generator(device=device).manual_seed(params.seed)
        per_chunk = max(1, self.batch_size // params.n)
        meta = {
            "sampler": self.name,
            "temperature": params.temperature,
            "top_k": params.top_k,
            "top_p": params.top_p,
            "min_p": params.min_p,
            "kept_logmass_recorded": True,
        }
        filtered = params.temperature > 0 and (params.top_k > 0 or params.top_p < 1 or params.min_p > 0)
        lean = self._lean(base)
        was_training = base.training
        base.eval()
        rollouts: list[Rollout] = []
        try:
            for start in range(0, len(encoded), per_chunk):
                chunk = encoded[start : start + per_chunk]
                # inference mode skips autograd's per-op bookkeeping (version counters, view tracking): ~15% of
                # a lean step's overhead, the same numbers; only where decoding changes no module state
                with torch.inference_mode() if lean and stateless_rotary(base) else nullcontext():
                    ids, logps, masses, finished = _decode_chunk(
                        base, chunk, params, generator, stops, pad, device, self.draw, lean
                    )
                for row, (tokens, lp, mass, done) in enumerate(zip(ids, logps, masses, finished)):
                    prompt_index = start + row // params.n
                    rollouts.append(
                        Rollout(
                            prompt_index=prompt_index,
                            sample_index=row % params.n,
                            prompt_ids=list(encoded[prompt_index]),
                            completion_ids=tokens,
                            logprobs=lp,
                            finished=done,
                            text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                            meta=dict(meta),
                            kept_logmass=mass if filtered else None,
                        )
                    )
        finally:
            base.train(was_training)
        return rollouts

    def _lean(self, model: Any) -> bool:
        """Whether decoding steps take ``lean_step`` (``step``: auto/lean/transformers)."""
        if self.step == "transformers":
            return False
        why_not = lean_step_supported(model)
        if why_not is not None and self.step == "lean":
            raise ValueError(
                f"step 'lean' cannot decode this model: {why_not}; use step 'auto' or 'transformers'"
            )
        return why_not is None


def _forward_arguments(model: Any) -> tuple[str, bool]:
    """The name of the KV-cache argument (transformers ≥ 5.25 calls it ``cache``, earlier versions
    ``past_key_values``) and whether the forward takes ``logits_to_keep``."""
    names = set(inspect.signature(model.forward).parameters)
    return ("cache" if "cache" in names else "past_key_values"), "logits_to_keep" in names


def _forward(
    model: Any, ids: Tensor, mask: Tensor, positions: Tensor, past: Any, arguments: tuple[str, bool]
) -> tuple[Tensor, Any]:
    """Next-token logits [B, V] at the last position, and the updated cache."""
    cache_name, takes_logits_to_keep = arguments
    kwargs: dict[str, Any] = {cache_name: past}
    if takes_logits_to_keep:
        kwargs["logits_to_keep"] = 1  # the prefill computes no [prompt, vocab] logits it never reads
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    return out.logits[:, -1, :], cache


def _expand_cache(past: Any, n: int) -> Any:
    if n == 1:
        return past
    if hasattr(past, "batch_repeat_interleave"):
        past.batch_repeat_interleave(n)
        return past
    return tuple(tuple(t.repeat_interleave(n, dim=0) for t in layer) for layer in past)  # legacy tuples


def _select_cache(past: Any, rows: Tensor) -> Any:
    if hasattr(past, "batch_select_indices"):
        past.batch_select_indices(rows)
        return past
    return tuple(tuple(t[rows] for t in layer) for layer in past)


def _draw_step(
    logits: Tensor, params: SamplingParams, generator: torch.Generator, rows: int, live: Tensor, how: str
) -> tuple[Tensor, Tensor, Tensor]:
    """One step's tokens [B], their log p_S [B] and kept_logmass [B] (``generation/filters.py``); random
    numbers are drawn for all ``rows`` of the chunk and the live rows' taken."""
    t = params.temperature
    if t > 0 and how == "inverse_cdf":
        scaled = logits.float() / t if t != 1 else logits.float()
        keep = filter_mask(scaled, params.top_k, params.top_p, params.min_p)
        uniforms = torch.rand(rows, generator=generator, device=logits.device, dtype=torch.float64)
        return inverse_cdf_draw(scaled, keep, uniforms[live])
    scaled, logp, kept, keep = step_distribution(logits, t, params.top_k, params.top_p, params.min_p)
    if t > 0:
        noise = torch.empty(rows, logp.shape[-1], device=logits.device).exponential_(1, generator=generator)
        token = draw(scaled, keep, noise[live])
    else:
        token = scaled.argmax(-1)
    return token, logp.gather(-1, token[:, None])[:, 0] - kept, kept


def _decode_chunk(
    model: Any,
    prompts: list[list[int]],
    params: SamplingParams,
    generator: torch.Generator,
    stops: list[int],
    pad: int,
    device: torch.device,
    how: str = "inverse_cdf",
    lean: bool = False,
) -> tuple[list[list[int]], list[list[float]], list[list[float]], list[bool]]:
    n, width = params.n, max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    arguments = _forward_arguments(model)
    logits, past = _forward(model, ids, mask, positions, None, arguments)  # each prompt once
    past = reserve(_expand_cache(past, n), params.max_new_tokens)  # no torch.cat of the cache per step
    reach = int(positions.max()) + params.max_new_tokens + 1  # past the last position a step can feed
    lean_step = LeanStep(model, reach) if lean and cache_is_reserved(past) else None
    logits = logits.repeat_interleave(n, dim=0)
    mask = mask.repeat_interleave(n, dim=0)
    last_position = positions[:, -1:].repeat_interleave(n, dim=0)
    rows = len(prompts) * n
    stop_tensor = torch.tensor(stops, dtype=torch.long, device=device)
    live = torch.arange(rows, device=device)  # the chunk row of each batch row
    running = torch.ones(rows, dtype=torch.bool, device=device)  # per batch row: not finished yet
    tokens = torch.full((rows, params.max_new_tokens), pad, dtype=torch.long, device=device)
    logprobs = torch.zeros(rows, params.max_new_tokens, device=device)
    masses = torch.zeros(rows, params.max_new_tokens, device=device)
    lengths = torch.zeros(rows, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    # the live rows' padding: the generic forward passes no attention mask when there is none (and keeps
    # it so, as the columns appended below are ones); the lean step does the same
    padded = bool((mask == 0).any())
    # while every row of the chunk is in the batch and running (no stop yet), batch row i is chunk row i and
    # the bookkeeping below writes whole columns instead of indexing the running rows
    everyone = True
    for step in range(params.max_new_tokens):
        token, token_logp, kept = _draw_step(logits, params, generator, rows, live, how)
        if everyone:
            tokens[:, step], logprobs[:, step], masses[:, step] = token, token_logp, kept
            lengths.fill_(step + 1)
            stopped = torch.isin(token, stop_tensor) if stops else None
            if stopped is not None and bool(stopped.any()):
                everyone = False
                finished[stopped] = True
                running = ~stopped
        else:
            writing = live[running]
            tokens[writing, step] = token[running]
            logprobs[writing, step] = token_logp[running]
            masses[writing, step] = kept[running]
            lengths[writing] = step + 1
            stopped = running & torch.isin(token, stop_tensor)
            finished[live[stopped]] = True
            running = running & ~stopped
        if step + 1 == params.max_new_tokens or not (everyone or bool(running.any())):
            break
        if not everyone:
            if float((~running).float().mean()) >= COMPACT_SHARE:
                keep_rows = running.nonzero()[:, 0]
                past = _select_cache(past, keep_rows)
                live, running, token = live[keep_rows], running[keep_rows], token[keep_rows]
                mask, last_position = mask[keep_rows], last_position[keep_rows]
                padded = bool((mask == 0).any())
            token = torch.where(running, token, torch.full_like(token, pad))
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        last_position = last_position + 1
        if lean_step is not None:
            logits = lean_step(token, last_position, mask.bool() if padded else None, past)
        else:
            logits, past = _forward(model, token[:, None], mask, last_position, past, arguments)
    length_list = lengths.tolist()
    ids_out = [row[:k] for row, k in zip(tokens.tolist(), length_list)]
    logps_out = [row[:k] for row, k in zip(logprobs.tolist(), length_list)]
    masses_out = [row[:k] for row, k in zip(masses.tolist(), length_list)]
    return ids_out, logps_out, masses_out, finished.tolist()
