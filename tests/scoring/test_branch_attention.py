"""Branch attention (only the visible prompt/branch blocks of the packed layout) equals SDPA with the dense
block mask of ``Batch.attention_mask_4d``, values and gradients, on crafted layouts; the engine with it equals
each sequence scored alone; the plan's blocks are the ones counted by hand."""

import dataclasses

import pytest
import torch
from torch.nn.functional import scaled_dot_product_attention

from alignlab.data.batching import make_batch
from alignlab.models.tiny import tiny_model
from alignlab.scoring import branch_attention, flex
from alignlab.scoring.branch_attention import build_plan
from alignlab.scoring.engine import Engine
from tests.scoring.test_flex import naive_logps, synthetic_groups

# (prompt length, [branch lengths]) per group, and the row budget: several segments per row, rows of
# different lengths (padding at the end of the shorter), branches of different lengths, K = 1 to 5
LAYOUTS = {
    "one_group": ([(17, [32] * 8)], 2048),
    "varied_branches": ([(9, [5, 31, 1, 12]), (23, [7, 7, 2])], 2048),
    "rows_with_padding": ([(12, [30, 4, 9]), (5, [8] * 5), (30, [3]), (2, [11, 6])], 60),
    "long_prompt": ([(40, [3, 6]), (3, [20, 1, 14])], 2048),
}


def dense_reference(query, key, value, batch):
    """SDPA with the dense additive mask, key/value heads repeated as transformers' repeat_kv: [R, L, H, D]."""
    groups = query.shape[1] // key.shape[1]
    mask = batch.attention_mask_4d(query.dtype)
    out = scaled_dot_product_attention(
        query, key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1), attn_mask=mask
    )
    return out.transpose(1, 2)


def layout_batch(name):
    sizes, per_row = LAYOUTS[name]
    records, groups = synthetic_groups(sizes, seed=1)
    return make_batch(records, groups, "packed", tokens_per_row=per_row)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("heads,kv_heads", [(4, 2), (3, 3), (6, 1)])
def test_values_and_gradients_equal_the_dense_mask(name, heads, kv_heads):
    batch = layout_batch(name)
    rows, length = batch.input_ids.shape
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(rows, h, length, 16, generator=gen) for h in (heads, kv_heads, kv_heads))
    real = (batch.segment_ids >= 0)[:, :, None, None]  # padding outputs are never read
    upstream = torch.randn(rows, length, heads, 16, generator=gen) * real
    outs, grads = {}, {}
    for side in ("dense", "branch"):
        inputs = [t.clone().requires_grad_() for t in (q, k, v)]
        if side == "dense":
            out = dense_reference(*inputs, batch)
        else:
            out = branch_attention.branch_attention(
                *inputs, build_plan(batch.segment_ids, batch.branch_ids, 1)
            )
        (out * upstream).sum().backward()
        outs[side] = out * real
        grads[side] = [t.grad for t in inputs]
    torch.testing.assert_close(outs["branch"], outs["dense"], atol=1e-6, rtol=1e-6)
    for got, want in zip(grads["branch"], grads["dense"]):
        torch.testing.assert_close(got, want, atol=1e-6 * want.abs().max(), rtol=1e-6)


def test_a_hidden_prompt_token_is_seen_by_no_one():
    """A reference view's hidden prompt token (segment -1 inside a segment): no query reads it."""
    batch = layout_batch("varied_branches")
    segment_ids = batch.segment_ids.clone()
    segment_ids[0, 4] = -1  # inside the first prompt
    batch = dataclasses.replace(batch, segment_ids=segment_ids)
    rows, length = batch.input_ids.shape
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(rows, h, length, 8, generator=gen) for h in (2, 1, 1))
    real = (segment_ids >= 0)[:, :, None, None]
    got = branch_attention.branch_attention(q, k, v, build_plan(segment_ids, batch.branch_ids, 1)) * real
    torch.testing.assert_close(got, dense_reference(q, k, v, batch) * real, atol=1e-6, rtol=1e-6)


def test_plan_blocks_by_hand():
    # one row: group 0 = prompt of 3 + branches of 2 and 4 tokens (columns 0-2, 3-4, 5-8); group 1 = prompt
    # of 1 + one branch of 1 (columns 9, 10); then 2 padding columns
    records, groups = synthetic_groups([(3, [2, 4]), (1, [1])])
    batch = make_batch(records, groups, "packed", tokens_per_row=13)
    batch = dataclasses.replace(
        batch,
        segment_ids=torch.cat([batch.segment_ids, torch.full((1, 2), -1)], 1),
        branch_ids=torch.cat([batch.branch_ids, torch.zeros(1, 2, dtype=torch.long)], 1),
    )
    plan = build_plan(batch.segment_ids, batch.branch_ids, dense_pairs=13 * 13)
    prompts, branches = plan.blocks
    assert prompts.queries.tolist() == [[0, 1, 2], [9, 0, 0]]
    assert prompts.valid.tolist() == [[True] * 3, [True, False, False]]
    assert branches.queries.tolist() == [[3, 4, 0, 0], [5, 6, 7, 8], [10, 0, 0, 0]]
    # keys: the segment's prompt (3 slots), then the branch's own tokens (4 slots)
    assert branches.keys.tolist() == [[0, 1, 2, 3, 4, 0, 0], [0, 1, 2, 5, 6, 7, 8], [9, 0, 0, 10, 0, 0, 0]]
    # query 7 (third token of branch 2) sees the prompt and columns 5-7
    assert branches.allowed[1, 2].tolist() == [True, True, True, True, True, True, False]
    # query 10 sees its prompt token 9 and itself
    assert branches.allowed[2, 0].tolist() == [True, False, False, True, False, False, False]
    assert plan.pairs == 2 * 3 * 3 + 3 * 4 * 7  # 102 pairs computed ...
    assert not plan.worthwhile()  # ... which is more than half of the 169 of the dense square
    # positions 11 and 12 (padding) read the extra zero slot after the 6 + 12 block query slots
    assert plan.inverse.tolist()[9:] == [3, 14, 18, 18]


def test_engine_with_branch_attention_equals_each_sequence_alone():
    records, groups = synthetic_groups([(17, [9, 12, 5, 7]), (6, [11, 3, 8])], seed=5)
    batch = make_batch(records, groups, "packed")
    for arch in ("qwen2", "llama"):
        model, _ = tiny_model(arch, seed=3)
        with torch.no_grad():
            got = Engine("packed", attention="branch")(model, batch).logps
            want = torch.stack(
                [naive_logps(model, g.prompt_ids, c) for g in groups for c in g.completion_ids]
            )
        assert torch.allclose(got.double(), want, atol=1e-5, rtol=1e-6)


def test_engine_gradients_equal_the_dense_mask_path(monkeypatch):
    calls = []
    original = branch_attention.branch_attention
    monkeypatch.setattr(flex, "branch_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    records, groups = synthetic_groups([(17, [32] * 8), (12, [20, 31, 25, 9, 32, 2, 17, 30])], seed=6)
    batch = make_batch(records, groups, "packed")
    grads = {}
    for attention in ("sdpa", "branch"):
        model, _ = tiny_model("qwen2", seed=4)
        Engine("packed", attention=attention)(model, batch).logps.pow(2).mean().backward()
        grads[attention] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert len(calls) == model.config.num_hidden_layers  # every layer took the branch path
    scale = grads["sdpa"].abs().max()
    assert (grads["branch"] - grads["sdpa"]).abs().max() <= 1e-6 * scale


def test_a_layout_with_few_hidden_pairs_takes_the_segment_path(monkeypatch):
    """One long completion per prompt: the blocks compute more than half the dense pairs, so no plan."""
    calls = []
    monkeypatch.setattr(flex, "branch_attention", lambda *a, **k: calls.append(1))
    records, groups = synthetic_groups([(20, [40]), (15, [30])])
    batch = make_batch(records, groups, "packed")
    model, _ = tiny_model("llama")
    with torch.no_grad():
        got = Engine("packed", attention="branch")(model, batch).logps
        want = Engine("packed", attention="sdpa")(model, batch).logps
    assert calls == [] and torch.equal(got, want)


def test_auto_takes_branch_only_where_the_engine_is_told():
    model, _ = tiny_model("llama")
    assert Engine(attention="auto")._attention_for(model) == "segment"
    assert Engine(attention="auto", auto_cpu_attention="branch")._attention_for(model) == "branch"
    assert Engine(attention="auto", auto_cpu_attention="branch", compile=True)._attention_for(model) == "sdpa"
    with pytest.raises(ValueError, match="auto_cpu_attention must be one of segment, branch"):
        Engine(auto_cpu_attention="flex")


def test_dropout_falls_back_to_sdpa_on_the_dense_mask():
    batch = layout_batch("varied_branches")
    rows, length = batch.input_ids.shape
    model, _ = tiny_model("qwen2")
    module = model.model.layers[0].self_attn
    q = torch.randn(rows, 4, length, 8)
    k, v = torch.randn(rows, 2, length, 8), torch.randn(rows, 2, length, 8)
    plan = build_plan(batch.segment_ids, batch.branch_ids, 1)
    plan.build_dense_mask = lambda: batch.attention_mask_4d()
    placeholder = flex.mask_placeholder(batch.input_ids.shape, torch.float32)
    torch.manual_seed(0)
    got, _ = flex._packed_attention(module, q, k, v, placeholder, dropout=0.5, alignlab_branches=plan)
    torch.manual_seed(0)
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    want, _ = sdpa_attention_forward(module, q, k, v, batch.attention_mask_4d(), dropout=0.5)
    assert torch.equal(got, want)


def test_the_placeholder_mask_without_a_plan_is_refused():
    model, _ = tiny_model("qwen2")
    module = model.model.layers[0].self_attn
    q, k = torch.randn(1, 4, 5, 8), torch.randn(1, 2, 5, 8)
    with pytest.raises(RuntimeError, match="branch plan did not reach the attention function"):
        flex._packed_attention(module, q, k, k, flex.mask_placeholder(torch.Size([1, 5]), torch.float32))
