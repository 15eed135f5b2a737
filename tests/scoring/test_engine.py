"""The packed engine equals scoring each prompt + completion alone through the full model."""

import pytest
import torch

from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import tokenize_records
from alignlab.models.tiny import tiny_model
from alignlab.scoring.engine import Engine, packed_supported


def naive_logps(model, prompt_ids, completion_ids):
    """Full-model forward of one sequence; log-probs of the completion tokens (independent of the engine)."""
    ids = torch.tensor([prompt_ids + completion_ids])
    logits = model(input_ids=ids).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    start = len(prompt_ids)
    return torch.stack([logp[start + t - 1, tok] for t, tok in enumerate(completion_ids)])


def records_with_k(k):
    words = ["red blue", "green cat dog", "sun", "moon tree fish bird", "star rain", "seven eight"]
    return [
        Record("Reverse the words: red blue green", [words[j % 6] for j in range(k)], ranking=list(range(k))),
        Record(
            [{"role": "user", "content": "Add 2 and 3."}],
            [str(5 + j) + " is it" * j for j in range(k)],
            ranking=list(range(k)),
        ),
        Record("hello", ["hi there friend " * (j + 1) for j in range(k)], ranking=list(range(k))),
    ]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_packed_equals_naive(arch, k):
    torch.manual_seed(0)
    model, tokenizer = tiny_model(arch)
    model.eval()
    records = records_with_k(k)
    groups, _ = tokenize_records(records, tokenizer)
    sizes = sorted(g.num_tokens for g in groups)
    batch = make_batch(records, groups, "packed", tokens_per_row=sizes[0] + sizes[-1])
    assert batch.input_ids.shape[0] == 2 and batch.segment_ids.max() == 1  # two rows, two groups in one
    with torch.no_grad():
        scores = Engine("packed", logits_chunk_size=7)(model, batch, {"token_logps"})
        expected, lengths = [], []
        for g in groups:
            for c in g.completion_ids:
                expected.append(naive_logps(model, g.prompt_ids, c))
                lengths.append(len(c))
    summed = torch.stack([e.sum() for e in expected]).float()
    # Per token within 1e-5; the sums (up to ~240 nats) within fp32 rounding of that size.
    assert torch.allclose(scores.logps, summed, atol=1e-5, rtol=1e-6)
    assert scores.lengths.tolist() == lengths
    for i, e in enumerate(expected):
        assert torch.allclose(scores.token_logps[i, : len(e)], e.float(), atol=1e-5)
        assert scores.token_mask[i].sum() == len(e)


def test_packed_gradients_equal_separate():
    model, tokenizer = tiny_model("llama")
    records = records_with_k(2)
    groups, _ = tokenize_records(records, tokenizer)
    grads = []
    for layout in ("packed", "separate"):
        model.zero_grad()
        scores = Engine(layout, logits_chunk_size=5)(model, make_batch(records, groups, layout), set())
        (scores.logps * torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 2.0])).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_entropy_kl_hidden_and_prompt_logps_match_full_forward():
    model, tokenizer = tiny_model("qwen2", seed=1)
    reference, _ = tiny_model("qwen2", seed=2)
    model.eval()
    records = records_with_k(2)
    groups, _ = tokenize_records(records, tokenizer)
    from alignlab.scoring.engine import Reference

    with torch.no_grad():
        scores = Engine("packed")(
            model,
            make_batch(records, groups, "packed"),
            {"token_entropy", "token_kl", "token_kl_reverse", "hidden", "prompt_logps"},
            reference=Reference(reference),
        )
        g, c = groups[0], groups[0].completion_ids[1]
        ids = torch.tensor([g.prompt_ids + c])
        out = model(input_ids=ids, output_hidden_states=True)
        logp = torch.log_softmax(out.logits[0].double(), -1)
        ref_logp = torch.log_softmax(reference(input_ids=ids).logits[0].double(), -1)
    p = len(g.prompt_ids)
    positions = range(p - 1, p - 1 + len(c))
    entropy = torch.stack([-(logp[t].exp() * logp[t]).sum() for t in positions])
    kl = torch.stack([(ref_logp[t].exp() * (ref_logp[t] - logp[t])).sum() for t in positions])
    assert torch.allclose(scores.token_entropy[1, : len(c)], entropy.float(), atol=1e-5)
    assert torch.allclose(scores.token_kl[1, : len(c)], kl.float(), atol=1e-5)
    reverse = torch.stack([(logp[t].exp() * (logp[t] - ref_logp[t])).sum() for t in positions])
    assert torch.allclose(scores.token_kl_reverse[1, : len(c)], reverse.float(), atol=1e-5)
    assert (reverse - kl).abs().max() > 1e-4  # the two directions differ here, so each is really checked
    # Pooled hidden state = the final layer's state at the completion's last token (after the final norm).
    assert torch.allclose(scores.hidden[1], out.hidden_states[-1][0, -1], atol=1e-5)
    prompt_sum = sum(logp[t - 1, g.prompt_ids[t]] for t in range(1, p))
    assert abs(scores.prompt_logps[0].item() - float(prompt_sum)) < 1e-4
    assert scores.prompt_lengths[0].item() == p - 1


def test_fallback_to_separate_layout_for_models_without_block_masks():
    model, tokenizer = tiny_model("llama")
    body_forward = model.model.forward

    def rejecting(*args, attention_mask=None, **kwargs):
        if attention_mask is not None and attention_mask.dim() == 4:
            raise ValueError("custom 4D masks are not supported")
        return body_forward(*args, attention_mask=attention_mask, **kwargs)

    model.model.forward = rejecting
    assert packed_supported(model) is False
    assert Engine("auto").choose_layout(model) == "separate"
    model2, _ = tiny_model("llama")
    assert Engine("auto").choose_layout(model2) == "packed"


def test_packing_saves_prompt_tokens():
    _, tokenizer = tiny_model("llama")
    records = records_with_k(4)
    groups, _ = tokenize_records(records, tokenizer)
    packed = make_batch(records, groups, "packed")
    separate = make_batch(records, groups, "separate")
    prompt_tokens = sum(len(g.prompt_ids) for g in groups)
    assert separate.num_tokens - packed.num_tokens == 3 * prompt_tokens  # K - 1 prompt copies saved per group
