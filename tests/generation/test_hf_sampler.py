"""The hf sampler: log-probs equal to the engine's, seeded, EOS and finished flags, greedy equal to generate."""

from __future__ import annotations

import pytest
import torch

from alignlab.data.tokenize import encode_prompt
from alignlab.generation import SamplingParams, build_sampler
from alignlab.generation.scoring import score_rollouts, support_logprobs
from alignlab.models.tiny import tiny_model

PROMPTS = ["add two and three", [{"role": "user", "content": "sort 3 1 2"}], "hello", "the longest word is"]


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(0)
    return tiny_model("llama", seed=1)


def frequent_tokens(model, tokenizer, k: int = 60) -> list[int]:
    """The k tokens the untrained model puts most mass on after the prompts: as stop ids they end most
    samples within a few steps, so rows leave the batch at different times."""
    with torch.no_grad():
        ids = torch.tensor([encode_prompt(tokenizer, PROMPTS[0])[0]])
        probs = torch.softmax(model(ids).logits[0, -1], -1)
    return [t for t in probs.argsort(descending=True).tolist() if t != tokenizer.eos_token_id][:k]


def reference_logps(model, prompt_ids, completion_ids, temperature):
    """log softmax(z / T) of each completion token from one plain forward over prompt + completion."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].double() / temperature
    logp = torch.log_softmax(logits, -1)
    start = len(prompt_ids) - 1
    return [float(logp[start + t, tok]) for t, tok in enumerate(completion_ids)]


@pytest.mark.parametrize(
    "temperature,filters",
    [(1.0, {}), (0.7, {}), (0.7, {"top_k": 40, "top_p": 0.9}), (1.2, {"min_p": 0.05, "top_p": 0.95})],
)
def test_logprobs_equal_the_engines_on_the_same_ids(llama, temperature, filters) -> None:
    model, tokenizer = llama
    params = SamplingParams(
        n=3,
        max_new_tokens=10,
        temperature=temperature,
        seed=7,
        stop_token_ids=tuple(frequent_tokens(model, tokenizer)),
        **filters,
    )
    rollouts = build_sampler("hf", model, tokenizer, batch_size=6).sample(PROMPTS, params)
    assert len(rollouts) == len(PROMPTS) * 3
    assert len({len(r.completion_ids) for r in rollouts}) > 2  # rows finished at different steps
    # The engine at the sampling temperature, moved onto the sampler's support, gives the sampler's numbers.
    scores = score_rollouts(model, rollouts, temperature=temperature)
    on_support = support_logprobs(scores.token_logps, rollouts)
    for i, rollout in enumerate(rollouts):
        length = len(rollout.completion_ids)
        assert scores.lengths[i] == length
        torch.testing.assert_close(on_support[i, :length], torch.tensor(rollout.logprobs), rtol=0, atol=1e-5)
        # Independently: a plain forward's log softmax(z / T), minus the recorded kept mass.
        mass = rollout.kept_logmass or [0.0] * length
        expected = [
            a - b
            for a, b in zip(
                reference_logps(model, rollout.prompt_ids, rollout.completion_ids, temperature), mass
            )
        ]
        torch.testing.assert_close(
            torch.tensor(rollout.logprobs).double(),
            torch.tensor(expected, dtype=torch.float64),
            rtol=0,
            atol=1e-5,
        )
        assert (rollout.kept_logmass is not None) == bool(filters)
        if rollout.kept_logmass is not None:
            assert all(m <= 1e-6 for m in rollout.kept_logmass) and any(
                m < -1e-3 for m in rollout.kept_logmass
            )


def test_same_seed_same_samples_other_seed_other_samples(llama) -> None:
    model, tokenizer = llama
    sampler = build_sampler("hf", model, tokenizer)
    params = SamplingParams(n=4, max_new_tokens=12, temperature=1.0, top_p=0.95, seed=3)
    first = sampler.sample(PROMPTS, params)
    again = sampler.sample(PROMPTS, params)
    other = sampler.sample(PROMPTS, params.model_copy(update={"seed": 4}))
    assert [r.completion_ids for r in first] == [r.completion_ids for r in again]
    assert [r.logprobs for r in first] == [r.logprobs for r in again]
    assert [r.completion_ids for r in first] != [r.completion_ids for r in other]
    # The n samples of a prompt are different draws, not copies.
    assert len({tuple(r.completion_ids) for r in first[:4]}) > 1


def test_prompts_are_encoded_as_the_trainer_encodes_them(llama) -> None:
    model, tokenizer = llama
    rollouts = build_sampler("hf", model, tokenizer).sample(PROMPTS, SamplingParams(n=2, max_new_tokens=2))
    for r in rollouts:
        assert r.prompt_ids == encode_prompt(tokenizer, PROMPTS[r.prompt_index])[0]
    assert [(r.prompt_index, r.sample_index) for r in rollouts[:4]] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_greedy_equals_transformers_generate(llama) -> None:
    model, tokenizer = llama
    params = SamplingParams(n=2, max_new_tokens=8, temperature=0.0)
    rollouts = build_sampler("hf", model, tokenizer, batch_size=4).sample(PROMPTS, params)
    for r in rollouts:
        out = model.generate(
            torch.tensor([r.prompt_ids]),
            attention_mask=torch.ones(1, len(r.prompt_ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=8,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        assert r.completion_ids == out[0, len(r.prompt_ids) :].tolist()


def test_stop_token_is_kept_and_finished_set_cut_samples_are_not_finished(llama) -> None:
    model, tokenizer = llama
    sampler = build_sampler("hf", model, tokenizer)
    # The greedy first token of prompt 0, found by a plain forward, made a stop token: the greedy sample
    # is that one token, kept, and finished.
    with torch.no_grad():
        first = int(model(torch.tensor([encode_prompt(tokenizer, PROMPTS[0])[0]])).logits[0, -1].argmax())
    (greedy,) = sampler.sample(
        PROMPTS[:1], SamplingParams(max_new_tokens=5, temperature=0.0, stop_token_ids=(first,))
    )
    assert greedy.completion_ids == [first] and greedy.finished
    # Sampled: every sample either ends with a stop id (finished) or has exactly max_new_tokens ids.
    stops = frequent_tokens(model, tokenizer, 30)
    params = SamplingParams(n=8, max_new_tokens=6, stop_token_ids=tuple(stops), seed=1)
    rollouts = sampler.sample(PROMPTS, params)
    ends = set(stops) | {tokenizer.eos_token_id}
    assert any(r.finished for r in rollouts) and any(not r.finished for r in rollouts)
    for r in rollouts:
        assert not ends & set(r.completion_ids[:-1])  # nothing after a stop
        if r.finished:
            assert r.completion_ids[-1] in ends
        else:
            assert len(r.completion_ids) == 6 and r.completion_ids[-1] not in ends


def test_eos_is_kept_when_emitted(llama) -> None:
    _, tokenizer = llama
    eos = tokenizer.eos_token_id
    # A copy with an untied output row for EOS along the mean final hidden state: EOS gets a logit near 8
    # where the others are near 0, so most samples end with it within a few steps.
    model = tiny_model("llama", seed=1)[0]
    with torch.no_grad():
        states = [
            model.model(torch.tensor([encode_prompt(tokenizer, p)[0]])).last_hidden_state[0] for p in PROMPTS
        ]
        mean = torch.cat(states).mean(0)
        head = model.lm_head.weight.detach().clone()
        head[eos] = 8 * mean / mean.square().sum()
        model.lm_head.weight = torch.nn.Parameter(head)
    rollouts = build_sampler("hf", model, tokenizer).sample(
        PROMPTS, SamplingParams(n=4, max_new_tokens=40, temperature=1.0, seed=2)
    )
    emitted = [r for r in rollouts if eos in r.completion_ids]
    assert len(emitted) > len(rollouts) // 2
    for r in emitted:
        assert r.completion_ids.index(eos) == len(r.completion_ids) - 1 and r.finished
        assert tokenizer.eos_token not in r.text  # the text is decoded without special tokens
    for r in rollouts:
        if eos not in r.completion_ids:
            assert len(r.completion_ids) == 40 and not r.finished
    # ignore_eos: the same model runs every sample to max_new_tokens, EOS drawn along the way.
    forced = build_sampler("hf", model, tokenizer).sample(
        PROMPTS, SamplingParams(n=4, max_new_tokens=40, seed=2, ignore_eos=True)
    )
    assert all(len(r.completion_ids) == 40 and not r.finished for r in forced)
    assert sum(r.completion_ids.count(eos) for r in forced) > len(forced)


def test_qwen2_and_gpt2_logprobs_equal_the_engine() -> None:
    for arch in ("qwen2", "gpt2"):
        model, tokenizer = tiny_model(arch, seed=0)
        rollouts = build_sampler("hf", model, tokenizer).sample(
            PROMPTS[:2], SamplingParams(n=2, max_new_tokens=5, temperature=0.9, top_k=50, seed=0)
        )
        scores = score_rollouts(model, rollouts, temperature=0.9)
        on_support = support_logprobs(scores.token_logps, rollouts)
        for i, r in enumerate(rollouts):
            torch.testing.assert_close(
                on_support[i, : len(r.logprobs)], torch.tensor(r.logprobs), rtol=0, atol=1e-5
            )


def test_unknown_backend_names_the_known_ones(llama) -> None:
    with pytest.raises(ValueError, match="the backends are: hf, vllm"):
        build_sampler("hff", *llama)


def test_samples_equal_transformers_generate_with_the_same_seed(llama) -> None:
    """Peer check of the whole decoding loop with ``draw="race"``: generate's multinomial is the same
    exponential race on the same seeded CPU stream, so with n samples of one prompt both give the same ids.
    (The default ``inverse_cdf`` draw uses other random numbers: its distribution is checked against numpy
    in test_filters, its log-probs against the engine above.)"""
    model, tokenizer = llama
    (prompt,) = PROMPTS[:1]
    ids = encode_prompt(tokenizer, prompt)[0]
    rollouts = build_sampler("hf", model, tokenizer, draw="race").sample(
        [prompt], SamplingParams(n=4, max_new_tokens=12, seed=11)
    )
    torch.manual_seed(11)
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        num_return_sequences=4,
        max_new_tokens=12,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    for rollout, row in zip(rollouts, out[:, len(ids) :].tolist()):
        expected = row[: row.index(tokenizer.eos_token_id) + 1] if tokenizer.eos_token_id in row else row
        assert rollout.completion_ids == expected


def test_an_unknown_draw_is_refused(llama) -> None:
    with pytest.raises(ValueError, match="draw must be one of inverse_cdf, race"):
        build_sampler("hf", *llama, draw="gumbel")
