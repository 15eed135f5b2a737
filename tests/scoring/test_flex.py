"""The FlexAttention path of the packed layout equals SDPA with the dense mask and each sequence scored alone.

torch has no FlexAttention backward on CPU, so on CPU these tests check the forward pass (scores) and that
training with ``attention="flex"`` is refused with a clear message; the gradient test runs where CUDA is.
"""

import pytest
import torch

from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.models.tiny import tiny_model
from alignlab.scoring import flex
from alignlab.scoring.engine import Engine

pytestmark = pytest.mark.skipif(not flex.FLEX_AVAILABLE, reason="torch without FlexAttention (needs >= 2.5)")


def synthetic_groups(sizes, seed=0, vocab=500):
    """Groups of random ids: sizes = [(prompt_len, [completion lens])]; long enough to span 128-token blocks."""
    gen = torch.Generator().manual_seed(seed)
    ids = lambda n: torch.randint(3, vocab, (n,), generator=gen).tolist()  # noqa: E731
    groups, records = [], []
    for i, (p, cs) in enumerate(sizes):
        groups.append(TokenizedGroup(ids(p), [ids(c) for c in cs], [[] for _ in cs], ["" for _ in cs], i))
        records.append(Record(f"p{i}", [f"c{j}" for j in range(len(cs))], ranking=list(range(len(cs)))))
    return records, groups


SIZES = [(70, [40, 25]), (90, [30, 50, 20]), (60, [35, 45]), (20, [15, 10])]


def naive_logps(model, prompt_ids, completion_ids):
    """One sequence through the full model with its ordinary causal mask (independent of the engine)."""
    logits = model(input_ids=torch.tensor([prompt_ids + completion_ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    start = len(prompt_ids)
    return torch.stack([logp[start + t - 1, tok] for t, tok in enumerate(completion_ids)]).sum()


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_flex_packed_equals_sdpa_and_naive(arch):
    records, groups = synthetic_groups(SIZES)
    batch = make_batch(records, groups, "packed", tokens_per_row=420)
    assert batch.input_ids.shape[1] > 2 * flex.BLOCK_SIZE and int(batch.segment_ids.max()) >= 1
    naive_model, _ = tiny_model(arch, seed=3)
    naive_model.eval()
    with torch.no_grad():
        expected = torch.stack(
            [naive_logps(naive_model, g.prompt_ids, c) for g in groups for c in g.completion_ids]
        )
        model, _ = tiny_model(arch, seed=3)  # a second copy: the flex switch must not touch the naive model
        model.eval()
        sdpa = Engine("packed", attention="sdpa")(model, batch, {"token_logps"})
        flexed = Engine("packed", attention="flex")(model, batch, {"token_logps"})
    assert model.config._attn_implementation == flex.ATTENTION_NAME
    assert torch.allclose(flexed.logps.double(), expected, atol=1e-5, rtol=1e-6)
    assert torch.allclose(flexed.token_logps, sdpa.token_logps, atol=1e-5)


def test_block_mask_blocks_follow_the_visibility_rule():
    """Which 128x128 blocks the BlockMask computes, against the rule evaluated in plain Python."""
    records, groups = synthetic_groups(SIZES)
    batch = make_batch(records, groups, "packed", tokens_per_row=420)
    block = 64
    mask = flex.packed_block_mask(batch.segment_ids, batch.branch_ids, block_size=block)
    dense_blocks = mask.to_dense()[:, 0]  # [R, Qblocks, Kblocks], 1 where the block is computed
    seg, branch = batch.segment_ids.tolist(), batch.branch_ids.tolist()
    length = len(seg[0])
    n_blocks = -(-length // block)
    skipped = 0
    for r in range(len(seg)):
        for qb in range(n_blocks):
            for kb in range(n_blocks):
                visible = any(
                    q == k or (k <= q and seg[r][q] == seg[r][k] >= 0 and branch[r][k] in (0, branch[r][q]))
                    for q in range(qb * block, min(length, (qb + 1) * block))
                    for k in range(kb * block, min(length, (kb + 1) * block))
                )
                assert bool(dense_blocks[r, qb, kb]) == visible, (r, qb, kb)
                skipped += not visible
    assert skipped > n_blocks  # more than the upper triangle: other segments' blocks are skipped too


def test_switched_model_still_scores_padded_rows_with_sdpa():
    """A model switched to the dispatching attention gives SDPA's results for ordinary (2D-mask) inputs."""
    records, groups = synthetic_groups(SIZES[:2])
    batch = make_batch(records, groups, "separate")
    model, _ = tiny_model("qwen2", seed=1)
    model.eval()
    with torch.no_grad():
        before = Engine("separate")(model, batch, set()).logps
        flex.use_packed_attention(model)
        after = Engine("separate")(model, batch, set()).logps
    assert model.config._attn_implementation == flex.ATTENTION_NAME
    assert torch.equal(before, after)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_flex_training_on_cpu_is_refused_with_the_reason():
    records, groups = synthetic_groups(SIZES[:1])
    model, _ = tiny_model("qwen2")
    with pytest.raises(ValueError, match="no backward pass on CPU.*attention 'sdpa'"):
        Engine("packed", attention="flex")(model, make_batch(records, groups, "packed"), set())
    with pytest.raises(ValueError, match="engine.attention must be one of auto, sdpa, segment, branch, flex"):
        Engine(attention="flash")


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="torch has no FlexAttention backward on CPU; needs CUDA"
)
def test_flex_gradients_equal_sdpa_on_cuda():
    records, groups = synthetic_groups(SIZES)
    batch = make_batch(records, groups, "packed", tokens_per_row=420).to("cuda")
    weights = torch.linspace(-1, 1, batch.num_completions, device="cuda")
    grads = []
    for attention in ("sdpa", "flex"):
        model, _ = tiny_model("qwen2", seed=2)
        model = model.cuda()
        scores = Engine("packed", attention=attention)(model, batch, set())
        (scores.logps * weights).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-4)
