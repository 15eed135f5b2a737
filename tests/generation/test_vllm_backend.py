"""The vllm sampler's engine-free parts, run on CPU against a STAND-IN for vLLM's ``LLM``.

vLLM itself is not installed here (it needs CUDA). ``StandInLLM`` below is not vLLM: it only mimics the
surface the sampler touches (``generate`` returning RequestOutput-shaped objects, the model runner's
``load_weights``, ``reset_prefix_cache``) so that the parameter translation, the output → Rollout
conversion, the weight names and the LoRA merge are checked. What this cannot check — vLLM's own
sampling, its log-prob mode and its weight loader accepting these names — is listed in docs/generation.md.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from alignlab.generation import SamplingParams, build_sampler
from alignlab.generation.scoring import support_logprobs
from alignlab.generation.vllm_backend import merged_weights, vllm_sampling_kwargs, vllm_weight_name
from alignlab.models.loading import LoraSettings, attach_lora
from alignlab.models.tiny import tiny_model


class StandInLLM:
    """A stand-in for vllm.LLM (NOT vLLM): replays scripted completions and records what it was given."""

    is_stand_in = True

    def __init__(self, script: list[list[SimpleNamespace]] | None = None):
        self.script = script or []
        self.requests: list = []
        self.loaded: list[tuple[str, torch.Tensor]] = []
        self.prefix_resets = 0
        runner_model = SimpleNamespace(load_weights=lambda weights: self.loaded.extend(weights))
        self.llm_engine = SimpleNamespace(
            model_executor=SimpleNamespace(
                driver_worker=SimpleNamespace(model_runner=SimpleNamespace(model=runner_model))
            )
        )

    def generate(self, requests, sampling_params, use_tqdm=False):
        self.requests.append((requests, sampling_params))
        return [SimpleNamespace(outputs=completions) for completions in self.script]

    def reset_prefix_cache(self):
        self.prefix_resets += 1


def completion(index, tokens, logprobs, reason):
    """A CompletionOutput-shaped record; each step's logprob map also holds a decoy entry, as vLLM's does
    when it returns more than the sampled token."""
    steps = [
        {t: SimpleNamespace(logprob=lp), t + 1: SimpleNamespace(logprob=-99.0)}
        for t, lp in zip(tokens, logprobs)
    ]
    return SimpleNamespace(index=index, token_ids=tokens, logprobs=steps, finish_reason=reason)


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", seed=0)


def test_params_translate_to_vllm_keywords(tiny) -> None:
    _, tokenizer = tiny
    params = SamplingParams(
        n=4, max_new_tokens=33, temperature=0.7, top_p=0.9, min_p=0.05, stop_token_ids=(7,), seed=5
    )
    first = vllm_sampling_kwargs(params, 0, [tokenizer.eos_token_id, 7])
    assert first["n"] == 4 and first["max_tokens"] == 33
    assert (first["temperature"], first["top_p"], first["min_p"]) == (0.7, 0.9, 0.05)
    assert first["top_k"] == -1  # our 0 ("off") is vLLM's -1
    assert first["stop_token_ids"] == [tokenizer.eos_token_id, 7]
    assert first["logprobs"] == 0 and first["detokenize"] is False
    seeds = {vllm_sampling_kwargs(params, i, [7])["seed"] for i in range(50)}
    assert len(seeds) == 50  # no two prompts share a random stream
    assert vllm_sampling_kwargs(params.model_copy(update={"top_k": 20}), 0, [7])["top_k"] == 20


def test_outputs_become_rollouts_with_logprobs_and_finished(tiny) -> None:
    model, tokenizer = tiny
    eos = tokenizer.eos_token_id
    hello = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    values = [-1.0 - 0.5 * i for i in range(len(hello) + 1)]
    script = [
        # vLLM may list samples out of order: ``index`` says which is which.
        [
            completion(1, [*hello, eos], values, "stop"),
            completion(0, hello[:1], [-0.25], "length"),
        ],
        [completion(0, [eos], [-3.0], "stop"), completion(1, hello, [-0.1] * len(hello), "length")],
    ]
    engine = StandInLLM(script)
    calls = []
    sampler = build_sampler(
        "vllm", model, tokenizer, engine=engine, params_factory=lambda **kw: calls.append(kw) or kw
    )
    params = SamplingParams(n=2, max_new_tokens=len(hello) + 1, temperature=1.0)
    rollouts = sampler.sample(["a prompt", [{"role": "user", "content": "hi"}]], params)
    requests, sent = engine.requests[0]
    from alignlab.data.tokenize import encode_prompt

    assert requests[1]["prompt_token_ids"] == encode_prompt(tokenizer, [{"role": "user", "content": "hi"}])[0]
    assert len(calls) == 2 and sent == calls
    assert [(r.prompt_index, r.sample_index) for r in rollouts] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (
        rollouts[0].completion_ids == hello[:1]
        and rollouts[0].logprobs == [-0.25]
        and not rollouts[0].finished
    )
    assert rollouts[1].completion_ids == [*hello, eos] and rollouts[1].finished
    assert rollouts[1].logprobs == values
    assert rollouts[1].text == "hello world"  # decoded by our tokenizer, EOS not in the text
    assert rollouts[2].completion_ids == [eos] and rollouts[2].finished
    assert all(r.meta["sampler"] == "vllm" and r.meta["kept_logmass_recorded"] for r in rollouts)


def test_filtered_vllm_rollouts_cannot_be_put_on_a_support_they_do_not_record(tiny) -> None:
    model, tokenizer = tiny
    engine = StandInLLM([[completion(0, [5], [-0.3], "length")]])
    sampler = build_sampler("vllm", model, tokenizer, engine=engine, params_factory=lambda **kw: kw)
    (rollout,) = sampler.sample(["x"], SamplingParams(max_new_tokens=1, top_p=0.8))
    assert rollout.kept_logmass is None and rollout.meta["kept_logmass_recorded"] is False
    with pytest.raises(ValueError, match="score its old log-probs with the engine"):
        support_logprobs(torch.zeros(1, 1), [rollout])


def test_missing_logprobs_is_a_clear_error(tiny) -> None:
    model, tokenizer = tiny
    broken = SimpleNamespace(index=0, token_ids=[5], logprobs=None, finish_reason="length")
    sampler = build_sampler(
        "vllm", model, tokenizer, engine=StandInLLM([[broken]]), params_factory=lambda **kw: kw
    )
    with pytest.raises(ValueError, match="no per-token log-probs"):
        sampler.sample(["x"], SamplingParams(max_new_tokens=1))


def test_weight_names_follow_vllm() -> None:
    assert vllm_weight_name("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight") == (
        "model.layers.0.self_attn.q_proj.weight"
    )
    assert vllm_weight_name("module.model.norm.weight") == "model.norm.weight"
    assert vllm_weight_name("model.layers.1._checkpoint_wrapped_module.mlp.up_proj.weight") == (
        "model.layers.1.mlp.up_proj.weight"
    )
    assert vllm_weight_name("base_model.model.lm_head.modules_to_save.default.weight") == "lm_head.weight"


def test_sync_sends_the_plain_models_weights(tiny) -> None:
    model, tokenizer = tiny
    engine = StandInLLM()
    build_sampler("vllm", model, tokenizer, engine=engine, params_factory=lambda **kw: kw)  # syncs once
    expected = dict(model.named_parameters())  # tied lm_head appears once, as vLLM expects
    assert [name for name, _ in engine.loaded] == list(expected)
    for name, tensor in engine.loaded:
        assert torch.equal(tensor, expected[name])
    assert engine.prefix_resets == 1


def test_sync_merges_lora_without_touching_the_policy(tiny) -> None:
    base, tokenizer = tiny
    policy = attach_lora(copy.deepcopy(base), LoraSettings(r=4, alpha=8))
    with torch.no_grad():  # non-zero adapters (B starts at zero)
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    engine = StandInLLM()
    sampler = build_sampler("vllm", policy, tokenizer, engine=engine, params_factory=lambda **kw: kw)
    sampler.sync(policy)
    # Peer: PEFT's own merge_and_unload on a copy.
    reference = dict(copy.deepcopy(policy).merge_and_unload().named_parameters())
    sent = dict(engine.loaded[len(engine.loaded) // 2 :])
    assert set(sent) == set(reference)
    for name, tensor in sent.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6)
    assert any(
        not torch.equal(sent[n], dict(base.named_parameters())[n]) for n in sent
    )  # the merge did something
    for name, param in policy.named_parameters():
        assert torch.equal(param, before[name])  # no merge/unmerge drift in the policy
    assert engine.prefix_resets == 2
    assert len(list(merged_weights(policy))) == len(reference)
