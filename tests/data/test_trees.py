"""OASST and UltraInteract trees."""

from __future__ import annotations

from alignlab.data.trees import oasst_trees, tree_pairs, ultrainteract_trees


def _msg(mid, parent, role, text, **kw):
    return {"message_id": mid, "parent_id": parent, "role": role, "text": text, "message_tree_id": "t1", **kw}


TREE = [
    _msg("r", None, "prompter", "root question"),
    _msg("a1", "r", "assistant", "first answer", rank=1),
    _msg("a2", "r", "assistant", "second answer", rank=0),
    _msg("p1", "a1", "prompter", "follow-up one"),
    _msg("p2", "a2", "prompter", "follow-up two"),
    _msg("b1", "p1", "assistant", "reply one"),
    _msg("b2", "p2", "assistant", "reply two"),
]


def _rows(rows):
    return [(f"f.jsonl:{i + 1}", r) for i, r in enumerate(rows)]


def test_oasst_two_leaves_two_paths():
    out = oasst_trees(_rows(TREE))
    assert out.trees == 1 and not out.errors
    assert [r.meta["message_ids"] for r in out.records] == [["r", "a1", "p1", "b1"], ["r", "a2", "p2", "b2"]]
    first = out.records[0]
    assert first.prompt == [
        {"role": "user", "content": "root question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "follow-up one"},
    ] and first.completions == ["reply one"]


def test_oasst_best_path_follows_rank_zero():
    out = oasst_trees(_rows(TREE), mode="best")
    assert [r.meta["message_ids"] for r in out.records] == [["r", "a2", "p2", "b2"]]


def test_oasst_excludes_deleted_synthetic_and_failed_review_with_their_subtrees():
    rows = [dict(m) for m in TREE]
    rows[1]["deleted"] = True  # a1 and its subtree go
    rows.append(_msg("a3", "r", "assistant", "synthetic answer", synthetic=True))
    rows.append(_msg("a4", "r", "assistant", "bad answer", review_result=False))
    out = oasst_trees(_rows(rows))
    assert [r.meta["message_ids"] for r in out.records] == [["r", "a2", "p2", "b2"]]
    assert out.dropped == {
        "deleted message (and its replies)": 1,
        "synthetic message (and its replies)": 1,
        "message that failed review (and its replies)": 1,
    }


def test_oasst_problems_name_the_row():
    rows = [
        *TREE,
        _msg("x", "missing", "assistant", "orphan"),
        {"message_id": "y", "role": "bot", "text": "t"},
    ]
    out = oasst_trees(_rows(rows))
    assert len(out.records) == 2
    assert sorted(e.where for e in out.errors) == ["f.jsonl:8", "f.jsonl:9"]


TREE_UI = {
    "id": "u1",
    "instruction": "Solve x + 2 = 5.",
    "root": {
        "actions": [
            {
                "text": "x = 3",
                "correct": True,
                "feedback": "Correct. Now solve 2x = 8.",
                "next": {
                    "actions": [
                        {"text": "x = 4", "correct": True},
                        {"text": "x = 6", "correct": False},
                        {"text": "x = 16", "correct": False},
                    ]
                },
            },
            {"text": "x = 7", "correct": False},
        ]
    },
}


def test_ultrainteract_pairs_share_history_up_to_the_branch():
    pairs = tree_pairs(TREE_UI)
    turn1 = [p for p in pairs if p.meta["turn"] == 1]
    turn2 = [p for p in pairs if p.meta["turn"] == 2]
    assert len(turn1) == 1 and len(turn2) == 2  # 1 correct x 1 incorrect, then 1 x 2
    history1 = [{"role": "user", "content": "Solve x + 2 = 5."}]
    assert turn1[0].prompt == history1 and turn1[0].completions == ["x = 3", "x = 7"]
    history2 = [
        *history1,
        {"role": "assistant", "content": "x = 3"},
        {"role": "user", "content": "Correct. Now solve 2x = 8."},
    ]
    assert all(p.prompt == history2 and p.completions[0] == "x = 4" for p in turn2)
    assert {p.completions[1] for p in turn2} == {"x = 6", "x = 16"}


def test_ultrainteract_pair_rows_and_bad_rows():
    row = {
        "id": "a",
        "parent_id": "t",
        "trajectory": [
            {"from": "user", "value": "Q"},
            {"from": "assistant", "value": "A1"},
            {"from": "observation", "value": "wrong"},
        ],
        "chosen": "good",
        "rejected": "bad",
    }
    out = ultrainteract_trees([("f:1", row), ("f:2", {"nope": 1}), ("f:3", TREE_UI)])
    assert len(out.records) == 1 + 3 and out.trees == 2
    assert (
        out.records[0].prompt[-1] == {"role": "user", "content": "wrong"} and out.records[0].meta["turn"] == 2
    )
    assert [e.where for e in out.errors] == ["f:2"]
