"""The lean decoding step gives the same bits as transformers' forward, and the sampler with it the same
rollouts; models it does not cover fall back to the forward (or are refused by name with ``step="lean"``)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from alignlab.generation import SamplingParams, build_sampler, hf
from alignlab.generation.kv_cache import reserve
from alignlab.generation.lean_step import LeanStep, lean_step_supported, stateless_rotary
from alignlab.models.tiny import tiny_config, tiny_model
from alignlab.scoring.flex import use_packed_attention

PROMPTS = ["add two and three", [{"role": "user", "content": "sort 3 1 2"}], "hi", "the longest word is"]


def prefilled(model, padded: bool):
    """Six rows after a prefill of two prompts (left-padded when ``padded``), each repeated three times."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 200, (2, 7), generator=gen)
    mask = torch.ones(2, 7, dtype=torch.long)
    if padded:
        mask[1, :3] = 0
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, cache=DynamicCache(), use_cache=True
    )
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    cache.batch_repeat_interleave(3)
    return reserve(cache, 8), mask.repeat_interleave(3, 0), positions[:, -1:].repeat_interleave(3, 0)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("tables", [False, True], ids=["rotary_per_step", "rotary_tables"])
def test_lean_step_logits_are_the_forwards_bits(arch: str, padded: bool, tables: bool) -> None:
    model, _ = tiny_model(arch, seed=3, heads=4)  # 4 query heads over 2 key/value heads
    model.eval()
    assert lean_step_supported(model) is None
    with torch.no_grad():
        generic, mask, position = prefilled(model, padded)
        lean, _, _ = prefilled(model, padded)
        token = torch.tensor([11, 12, 13, 14, 15, 16])
        for step in range(4):
            if step == 2:  # rows leave the batch
                keep = torch.tensor([0, 2, 3, 5])
                generic.batch_select_indices(keep)
                lean.batch_select_indices(keep)
                token, mask, position = token[keep], mask[keep], position[keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position = position + 1
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=position, cache=generic)
            expected = out.logits[:, -1]
            step_fn = LeanStep(model, 16) if tables else LeanStep(model)
            assert (step_fn.tables is not None) is tables
            got = step_fn(token, position, mask.bool() if padded else None, lean)
            assert torch.equal(got, expected), (step, (got - expected).abs().max())
            token = expected.argmax(-1)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_sampler_gives_the_same_rollouts_with_either_step(arch: str, monkeypatch) -> None:
    model, tokenizer = tiny_model(arch, seed=4)
    use_packed_attention(
        model
    )  # as the trainer leaves the policy: the engine's attention, sdpa when decoding
    with torch.no_grad():
        first = torch.softmax(model(torch.tensor([[5, 6, 7]])).logits[0, -1], -1)
    stops = tuple(first.argsort(descending=True)[:40].tolist())  # rows finish at different steps
    params = SamplingParams(n=3, max_new_tokens=9, temperature=0.8, top_p=0.95, seed=5, stop_token_ids=stops)
    generic = build_sampler("hf", model, tokenizer, batch_size=6, step="transformers").sample(PROMPTS, params)
    calls = []
    monkeypatch.setattr(
        hf, "LeanStep", lambda model, *reach: lambda *a: calls.append(1) or LeanStep(model, *reach)(*a)
    )
    lean = build_sampler("hf", model, tokenizer, batch_size=6, step="lean").sample(PROMPTS, params)
    assert len(calls) >= params.max_new_tokens - 1  # the lean step did decode (two chunks)
    assert len({len(r.completion_ids) for r in generic}) > 2
    for a, b in zip(generic, lean):
        assert (a.completion_ids, a.logprobs, a.kept_logmass, a.finished) == (
            b.completion_ids,
            b.logprobs,
            b.kept_logmass,
            b.finished,
        )


def test_other_models_take_the_forward_and_lean_is_refused_by_name() -> None:
    model, tokenizer = tiny_model("gpt2", seed=1)
    assert "GPT2LMHeadModel" in lean_step_supported(model)
    params = SamplingParams(n=2, max_new_tokens=4, seed=1)
    auto = build_sampler("hf", model, tokenizer, step="auto").sample(PROMPTS[:2], params)
    generic = build_sampler("hf", model, tokenizer, step="transformers").sample(PROMPTS[:2], params)
    assert [r.completion_ids for r in auto] == [r.completion_ids for r in generic]
    with pytest.raises(ValueError, match="step 'lean' cannot decode this model: GPT2LMHeadModel"):
        build_sampler("hf", model, tokenizer, step="lean").sample(PROMPTS[:1], params)
    with pytest.raises(ValueError, match="step must be one of auto, lean, transformers"):
        build_sampler("hf", model, tokenizer, step="fast")


def test_a_replaced_forward_or_another_attention_is_not_supported() -> None:
    model, _ = tiny_model("llama", seed=1)
    layer = model.model.layers[0]
    layer.forward = layer.forward  # what accelerate's hooks and hub kernels do: an instance-level forward
    assert "LlamaDecoderLayer" in lean_step_supported(model)
    eager, _ = tiny_model("qwen2", seed=1)
    eager.set_attn_implementation("eager")
    assert "'eager'" in lean_step_supported(eager)


def trains(model) -> bool:
    """One backward pass through ``model`` (in train mode) leaves a gradient on every parameter."""
    model.train()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]])
    model(ids, labels=ids).loss.backward()
    return all(p.grad is not None for p in model.parameters())


def test_the_model_trains_after_sampling_with_either_rotary_kind(monkeypatch) -> None:
    # decoding runs in inference mode only where it leaves no state on the model: a plain rotary embedding
    model, tokenizer = tiny_model("llama", seed=2)
    assert stateless_rotary(model)
    modes = []
    monkeypatch.setattr(
        hf,
        "LeanStep",
        lambda model, *reach: (
            lambda *a: modes.append(torch.is_inference_mode_enabled()) or LeanStep(model, *reach)(*a)
        ),
    )
    build_sampler("hf", model, tokenizer).sample(PROMPTS, SamplingParams(n=2, max_new_tokens=4))
    assert modes and all(modes)
    assert trains(model)
    monkeypatch.undo()
    # "dynamic" rope rewrites its inv_freq buffer once a sequence passes max_position_embeddings (8 here)
    config = tiny_config("llama", len(tokenizer))
    config.max_position_embeddings = 8
    config.rope_parameters = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}
    dynamic = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    assert not stateless_rotary(dynamic) and lean_step_supported(dynamic) is None
    before = dynamic.model.rotary_emb.inv_freq.clone()
    build_sampler("hf", dynamic, tokenizer).sample(PROMPTS, SamplingParams(n=2, max_new_tokens=6))
    assert not torch.equal(dynamic.model.rotary_emb.inv_freq, before)  # the buffer did change while decoding
    assert trains(dynamic)
