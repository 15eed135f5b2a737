"""Segment attention (SDPA per packed segment, the CPU default) equals each sequence scored alone, and its
gradients equal the dense-mask path's; the segment spans are the packed groups, counted by hand."""

import pytest
import torch

from alignlab.data.batching import make_batch
from alignlab.models.reward import RewardModel
from alignlab.models.tiny import tiny_model
from alignlab.scoring import flex
from alignlab.scoring.engine import Engine
from tests.scoring.test_flex import SIZES, naive_logps, synthetic_groups


@pytest.fixture
def segment_calls(monkeypatch):
    """Counts the segments the per-segment path computes (so a silent fallback to dense SDPA fails)."""
    seen = []
    original = flex._segment_attention

    def spy(module, query, key, value, mask, segments, *args, **kwargs):
        seen.append(len(segments))
        return original(module, query, key, value, mask, segments, *args, **kwargs)

    monkeypatch.setattr(flex, "_segment_attention", spy)
    return seen


def test_segment_spans_by_hand():
    records, groups = synthetic_groups(SIZES)
    # Group sizes (prompt once + completions): 135, 190, 140, 45 tokens; rows of at most 300 tokens,
    # first-fit decreasing: [190] then 140 + 135 = 275 in one row, then 45 joins the first row (235).
    batch = make_batch(records, groups, "packed", tokens_per_row=300)
    assert batch.segment_spans() == [(0, 0, 190), (0, 190, 235), (1, 0, 135), (1, 135, 275)]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_segment_attention_equals_each_sequence_alone(arch, segment_calls):
    model, _ = tiny_model(arch, seed=3)
    records, groups = synthetic_groups(SIZES, vocab=400)
    batch = make_batch(records, groups, "packed", tokens_per_row=300)
    with torch.no_grad():
        got = Engine("packed", attention="segment")(model, batch).logps
        want = torch.stack([naive_logps(model, g.prompt_ids, c) for g in groups for c in g.completion_ids])
    assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-5)
    assert segment_calls and set(segment_calls) == {4}  # every layer computed the 4 segments on their own


def test_segment_gradients_equal_the_dense_mask_path(segment_calls):
    records, groups = synthetic_groups(SIZES)
    batch = make_batch(records, groups, "packed", tokens_per_row=300)
    grads = {}
    for attention in ("sdpa", "segment"):
        model, _ = tiny_model("qwen2", seed=4)
        loss = Engine("packed", attention=attention)(model, batch).logps.pow(2).mean()
        loss.backward()
        grads[attention] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert segment_calls  # the segment run did go segment by segment
    # fp32 summation order differs between the two; gradients reach ~500 here, so compare to their scale.
    scale = grads["sdpa"].abs().max()
    assert (grads["segment"] - grads["sdpa"]).abs().max() <= 1e-6 * scale


def test_auto_is_segment_on_cpu_and_sdpa_when_compiling():
    model, _ = tiny_model("llama")
    assert Engine(attention="auto")._attention_for(model) == "segment"
    assert Engine(attention="auto", compile=True)._attention_for(model) == "sdpa"


def test_reward_model_with_segment_attention_equals_the_dense_mask(segment_calls):
    model = RewardModel.from_base("tiny:llama", seed=5).eval()
    records, groups = synthetic_groups(SIZES)
    batch = make_batch(records, groups, "packed", tokens_per_row=300)
    with torch.no_grad():
        dense = model.pooled(batch, "sdpa")
        segment = model.pooled(batch, "segment")
    assert segment_calls
    assert torch.allclose(segment, dense, atol=1e-5)


def test_auto_keeps_dense_sdpa_for_a_body_that_takes_no_extra_arguments():
    model, _ = tiny_model("llama")
    forward = model.model.forward

    def strict_forward(input_ids=None, attention_mask=None, position_ids=None, use_cache=None):
        return forward(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache
        )

    model.model.forward = strict_forward  # a body that could not receive the segment spans
    assert Engine(attention="auto")._attention_for(model) == "sdpa"
