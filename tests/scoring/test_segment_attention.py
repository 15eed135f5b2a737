"""Segment attention (SDPA per packed segment, the CPU default) equals each sequence scored alone, and its
gradients equal the dense-mask path's; the segment spans are the packed groups, counted by hand."""

import pytest
import torch

from alignlab.data.batching import make_batch
from alignlab.models.reward import RewardModel
from alignlab.models.tiny import tiny_model
from alignlab.scoring import flex
from alignlab.scoring.engine import Engine
from alignlab.scoring.hidden_states import pooled_hidden_states
from tests.scoring.test_flex import SIZES, naive_logps, synthetic_groups

# Group sizes (prompt once + completions) 600, 300 and 100 tokens, rows of at most 700 tokens (first-fit
# decreasing): row 0 = groups 0 and 2 (600 + 100), row 1 = group 1 (300). Row 0 is long enough to be computed
# segment by segment; row 1, shorter than SEGMENT_MIN_ROW (512), is one square.
LONG = [(300, [200, 100]), (150, [100, 50]), (60, [25, 15])]
BLOCKS = [(0, 0, 600), (0, 600, 700), (1, 0, 300)]


def long_batch():
    records, groups = synthetic_groups(LONG, vocab=400)
    return groups, make_batch(records, groups, "packed", tokens_per_row=700)


@pytest.fixture
def blocks_seen(monkeypatch):
    """The squares the segment path computes, per layer call (so a silent fall back to dense SDPA fails)."""
    seen = []
    original = flex._attention_blocks

    def spy(segments):
        out = original(segments)
        seen.append(out)
        return out

    monkeypatch.setattr(flex, "_attention_blocks", spy)
    return seen


def test_segment_spans_by_hand():
    records, groups = synthetic_groups(SIZES)
    # Group sizes (prompt once + completions): 135, 190, 140, 45 tokens; rows of at most 300 tokens,
    # first-fit decreasing: [190] then 140 + 135 = 275 in one row, then 45 joins the first row (235).
    batch = make_batch(records, groups, "packed", tokens_per_row=300)
    assert batch.segment_spans() == [(0, 0, 190), (0, 190, 235), (1, 0, 135), (1, 135, 275)]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_segment_attention_equals_each_sequence_alone(arch, blocks_seen):
    model, _ = tiny_model(arch, seed=3)
    groups, batch = long_batch()
    with torch.no_grad():
        got = Engine("packed", attention="segment")(model, batch).logps
        want = torch.stack([naive_logps(model, g.prompt_ids, c) for g in groups for c in g.completion_ids])
    assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-5)
    assert blocks_seen and all(b == BLOCKS for b in blocks_seen)  # every layer computed these squares


def test_segment_gradients_equal_the_dense_mask_path(blocks_seen):
    _, batch = long_batch()
    grads = {}
    for attention in ("sdpa", "segment"):
        model, _ = tiny_model("qwen2", seed=4)
        loss = Engine("packed", attention=attention)(model, batch).logps.pow(2).mean()
        loss.backward()
        grads[attention] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert blocks_seen  # the segment run did go square by square
    # fp32 summation order differs between the two; compare to the gradients' scale.
    scale = grads["sdpa"].abs().max()
    assert (grads["segment"] - grads["sdpa"]).abs().max() <= 1e-6 * scale


def test_short_batches_stay_one_dense_call(blocks_seen):
    records, groups = synthetic_groups(SIZES)
    batch = make_batch(records, groups, "packed", tokens_per_row=300)  # rows of 235 and 275 tokens
    model, _ = tiny_model("llama")
    with torch.no_grad():
        Engine("packed", attention="segment")(model, batch)
    assert blocks_seen == []  # below SEGMENT_MIN_ROW the per-segment loop costs more than it saves


def test_auto_is_segment_on_cpu_and_sdpa_when_compiling():
    model, _ = tiny_model("llama")
    assert Engine(attention="auto")._attention_for(model) == "segment"
    assert Engine(attention="auto", compile=True)._attention_for(model) == "sdpa"


def test_auto_keeps_dense_sdpa_for_a_body_that_takes_no_extra_arguments():
    model, _ = tiny_model("llama")
    forward = model.model.forward

    def strict_forward(input_ids=None, attention_mask=None, position_ids=None, use_cache=None):
        return forward(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache
        )

    model.model.forward = strict_forward  # a body that could not receive the segment spans
    assert Engine(attention="auto")._attention_for(model) == "sdpa"


def test_reward_model_with_segment_attention_equals_the_dense_mask(blocks_seen):
    model = RewardModel.from_base("tiny:llama", seed=5).eval()
    _, batch = long_batch()
    with torch.no_grad():
        dense = pooled_hidden_states(model, batch, "sdpa")
        segment = pooled_hidden_states(model, batch, "segment")
    assert blocks_seen
    assert torch.allclose(segment, dense, atol=1e-5)
