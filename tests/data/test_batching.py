"""Token-budget micro-batches: every record once, each micro-batch within the budget, counted by hand."""

import pytest

from alignlab.data.batching import layout_tokens, split_by_tokens
from alignlab.data.tokenize import TokenizedGroup


def group(index: int, prompt: int, completions: list[int]) -> TokenizedGroup:
    return TokenizedGroup(
        prompt_ids=[1] * prompt,
        completion_ids=[[2] * c for c in completions],
        context_ids=[[] for _ in completions],
        roles=["" for _ in completions],
        record_index=index,
    )


GROUPS = [group(0, 10, [3, 5]), group(1, 40, [20, 2]), group(2, 4, [1, 1]), group(3, 30, [30, 10])]


def test_layout_tokens_counts_positions_by_hand():
    # packed: the prompt once plus every completion.
    assert layout_tokens(GROUPS[:2], "packed") == (10 + 3 + 5) + (40 + 20 + 2)
    # separate: one row per completion, padded to the widest row (40 + 20 = 60), four rows.
    assert layout_tokens(GROUPS[:2], "separate") == 4 * 60


@pytest.mark.parametrize("layout", ["packed", "separate"])
@pytest.mark.parametrize("budget", [1, 60, 100, 1000])
def test_split_keeps_every_record_once_and_stays_within_the_budget(layout, budget):
    ids = [3, 0, 2, 1]
    batches = split_by_tokens(GROUPS, ids, budget, layout)
    assert sorted(i for b in batches for i in b) == sorted(ids)
    for b in batches:
        assert len(b) == 1 or layout_tokens([GROUPS[i] for i in b], layout) <= budget
        assert b == [i for i in ids if i in b]  # the order given is kept inside a micro-batch


def test_split_puts_the_longest_records_first_and_fills_greedily():
    # Unshared lengths: g3 = 60 + 40 = 100, g1 = 60 + 42 = 102, g0 = 13 + 15 = 28, g2 = 5 + 5 = 10.
    # Packed sizes: g1 62, g3 70, g0 18, g2 6. Longest first: g1, g3, g0, g2.
    # Budget 80: [g1] (62 + 70 > 80), [g3] (70 + 18 > 80), then [g0, g2] (18 + 6 = 24).
    assert split_by_tokens(GROUPS, [0, 1, 2, 3], 80, "packed") == [[1], [3], [0, 2]]
    # Budget 140: g1 + g3 = 132 fits, + g0 = 150 does not; then g0 + g2.
    assert split_by_tokens(GROUPS, [0, 1, 2, 3], 140, "packed") == [[1, 3], [0, 2]]
    # A budget larger than everything gives one micro-batch.
    assert split_by_tokens(GROUPS, [0, 1, 2, 3], 10_000, "packed") == [[0, 1, 2, 3]]
