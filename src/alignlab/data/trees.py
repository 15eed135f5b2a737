"""Conversation and preference trees: OpenAssistant message trees and UltraInteract preference trees.

``oasst_trees`` (Köpf et al. 2023, arXiv 2304.07327; METHODS.md `oasst_trees`): group messages by
``message_tree_id``, link parent → children, check each tree has one root written by the prompter, leave
out deleted, synthetic and review-failed messages (with their subtrees) and other languages, then walk the
tree depth-first. Every root-to-leaf path is a conversation (``mode="paths"``), or only the best one
(``mode="best"``: the lowest ``rank`` child at every level, rank 0 = best); a path becomes a demonstration
whose prompt is every turn but the last assistant reply. ``mode="pairs"`` gives the ranked sibling replies
(what ``--format oasst`` reads).

``ultrainteract_trees`` (Yuan et al. 2024, Eurus, arXiv 2404.02078; METHODS.md `ultrainteract_trees`):
a tree per instruction whose nodes hold alternative actions, each correct or not, with the environment's
or critic's feedback; at every turn each correct action is paired with each incorrect one, with the
history of the correct path so far (the instruction, then correct action and feedback of every earlier
turn) as the prompt, so every pair of one turn shares its history up to the branching turn. Rows of
the released ``UltraInteract_pair`` layout ({trajectory: [{from, value}], chosen, rejected, parent_id})
are read too: the trajectory is the history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alignlab.data.formats.base import Dropped
from alignlab.data.formats.oasst import ROLES, _flatten, _message_problem
from alignlab.data.records import Record, RecordError, demonstration, pair
from alignlab.data.tools import register_tool


@dataclass
class TreeResult:
    """Records made from trees, the problems (file and line) and what was left out, by reason."""

    records: list[Record] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    trees: int = 0

    def summary(self, name: str) -> str:
        text = f"{name}: {self.trees} trees -> {len(self.records)} records"
        if self.errors:
            text += f"; {len(self.errors)} bad rows"
        if self.dropped:
            text += "; left out:" + "".join(f"\n  {n} x {why}" for why, n in self.dropped.most_common())
        return text


def _excluded(row: dict[str, Any], lang: str | None) -> str | None:
    if row.get("deleted"):
        return "deleted message (and its replies)"
    if row.get("synthetic"):
        return "synthetic message (and its replies)"
    if row.get("review_result") is False:
        return "message that failed review (and its replies)"
    if lang is not None and row.get("lang") not in (None, lang):
        return f"message not in language {lang!r} (and its replies)"
    return None


def _rank(row: dict[str, Any]) -> float:
    rank = row.get("rank")
    return float(rank) if isinstance(rank, (int, float)) and rank == rank else float("inf")


@register_tool(
    "oasst_trees",
    kind="trees",
    paper="Köpf et al. 2023 'OpenAssistant Conversations' (arXiv 2304.07327)",
    test="tests/data/test_trees.py::test_oasst_two_leaves_two_paths and the exclusion/best-path tests",
    checked="METHODS.md oasst_trees block; fields from the oasst1 dataset card (formats/oasst.py)",
)
def oasst_trees(
    rows: Iterable[tuple[str, dict[str, Any]]], mode: str = "paths", lang: str | None = None
) -> TreeResult:
    """Conversations (or ranked pairs) from OpenAssistant message rows ``(where, row)``, flat or nested."""
    if mode not in ("paths", "best", "pairs"):
        raise ValueError(f"oasst_trees: mode must be paths, best or pairs, got {mode!r}")
    out = TreeResult()
    if mode == "pairs":
        from alignlab.data.formats.oasst import OASST

        for outcome in OASST.to_records(rows):
            if isinstance(outcome, Record):
                out.records.append(outcome)
            elif isinstance(outcome, Dropped):
                out.dropped[outcome.reason] += 1
            else:
                out.errors.append(outcome)
        out.trees = len({r.meta.get("message_tree_id") for r in out.records})
        return out
    messages: dict[Any, tuple[str, dict[str, Any]]] = {}
    children: dict[Any, list[Any]] = {}
    for where, row in _flatten(rows):
        if isinstance(row, RecordError):
            out.errors.append(row)
            continue
        problem = _message_problem(row)
        if problem is not None:
            out.errors.append(
                RecordError(problem, where, "an OpenAssistant message is {message_id, parent_id, role, text}")
            )
            continue
        if row["message_id"] in messages:
            out.errors.append(
                RecordError(
                    f"message_id {row['message_id']!r:.60} appears again", where, "remove the duplicate row"
                )
            )
            continue
        messages[row["message_id"]] = (where, row)
        if row.get("parent_id") is not None:
            children.setdefault(row["parent_id"], []).append(row["message_id"])
    roots: dict[Any, list[Any]] = {}
    for mid, (where, row) in messages.items():
        if row.get("parent_id") is None:
            roots.setdefault(row.get("message_tree_id", mid), []).append(mid)
        elif row["parent_id"] not in messages:
            out.errors.append(
                RecordError(
                    f"parent message {row['parent_id']!r:.60} is not in the data",
                    where,
                    "read the whole message tree",
                )
            )
    for tree_id, tree_roots in roots.items():
        if len(tree_roots) != 1:
            where = messages[tree_roots[0]][0]
            out.errors.append(
                RecordError(
                    f"tree {tree_id!r:.60} has {len(tree_roots)} roots",
                    where,
                    "a tree has one initial prompt",
                )
            )
            continue
        where, root = messages[tree_roots[0]]
        if root["role"] != "prompter":
            out.errors.append(
                RecordError("a tree's root must be a prompter message", where, "fix the tree's first message")
            )
            continue
        reason = _excluded(root, lang)
        if reason:
            out.dropped[reason] += 1
            continue
        out.trees += 1
        for path in _paths(tree_roots[0], messages, children, mode == "best", lang, out.dropped):
            turns = [{"role": ROLES[messages[m][1]["role"]], "content": messages[m][1]["text"]} for m in path]
            if turns[-1]["role"] != "assistant":
                out.dropped["path ending with the prompter's message (no reply to learn)"] += 1
                continue
            out.records.append(
                demonstration(
                    turns[:-1],
                    turns[-1]["content"],
                    source="oasst",
                    id=str(path[-1]),
                    meta={"message_tree_id": str(tree_id), "message_ids": [str(m) for m in path]},
                )
            )
    return out


def _paths(
    root: Any, messages: dict, children: dict, best: bool, lang: str | None, dropped: Counter
) -> Iterator[list[Any]]:
    stack = [[root]]
    while stack:
        path = stack.pop()
        kids = []
        for kid in children.get(path[-1], []):
            reason = _excluded(messages[kid][1], lang)
            if reason:
                dropped[reason] += 1
            else:
                kids.append(kid)
        if not kids:
            yield path
            continue
        if best:
            kids = [min(kids, key=lambda k: _rank(messages[k][1]))]
        for kid in reversed(kids):
            stack.append([*path, kid])


# ------------------------------------------------------------------ UltraInteract
@register_tool(
    "ultrainteract_trees",
    kind="trees",
    paper="Yuan et al. 2024 'Advancing LLM Reasoning Generalists with Preference Trees' (Eurus/UltraInteract, arXiv 2404.02078)",
    test="tests/data/test_trees.py::test_ultrainteract_pairs_share_history_up_to_the_branch",
    checked="METHODS.md ultrainteract_trees block (abstract); UltraInteract_pair fields from the dataset card as recalled",
)
def ultrainteract_trees(rows: Iterable[tuple[str, dict[str, Any]]]) -> TreeResult:
    """Pairs from UltraInteract trees: nested ``{instruction, root}`` rows or ``UltraInteract_pair`` rows."""
    out = TreeResult()
    seen_trees = set()
    for where, row in rows:
        try:
            if "trajectory" in row:
                out.records.append(_pair_row(row, where))
                seen_trees.add(row.get("parent_id", row.get("id")))
            elif "instruction" in row and "root" in row:
                out.records += tree_pairs(row, where, out.dropped)
                seen_trees.add(row.get("id", where))
            else:
                raise RecordError(
                    f"neither an UltraInteract tree nor a pair row (columns {sorted(row)[:8]})",
                    where,
                    "give {instruction, root: {actions: [...]}} or {trajectory, chosen, rejected}",
                )
        except RecordError as err:
            out.errors.append(err)
    out.trees = len(seen_trees)
    return out


_FROM = {"user": "user", "human": "user", "observation": "user", "assistant": "assistant", "gpt": "assistant"}


def _pair_row(row: dict[str, Any], where: str) -> Record:
    trajectory = row["trajectory"]
    if not isinstance(trajectory, list) or not trajectory:
        raise RecordError("'trajectory' must be a non-empty list of {from, value} turns", where)
    history = []
    for i, turn in enumerate(trajectory):
        if (
            not isinstance(turn, dict)
            or turn.get("from") not in _FROM
            or not isinstance(turn.get("value"), str)
        ):
            raise RecordError(
                f"trajectory[{i}] must be {{from: user|assistant|observation, value: text}}", where
            )
        history.append({"role": _FROM[turn["from"]], "content": turn["value"]})
    for name in ("chosen", "rejected"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise RecordError(f"'{name}' must be non-empty text", where)
    turn = sum(m["role"] == "assistant" for m in history) + 1
    meta = {"tree_id": str(row.get("parent_id", row.get("id"))), "turn": turn}
    record = pair(history, row["chosen"], row["rejected"], source="ultrainteract", meta=meta)
    record.validate(where)
    return record


def tree_pairs(tree: dict[str, Any], where: str = "", dropped: Counter | None = None) -> list[Record]:
    """Pairs of one nested tree: ``{instruction, id?, root: {actions: [{text, correct, feedback?, next?}]}}``."""
    dropped = dropped if dropped is not None else Counter()
    history: list[dict[str, str]] = [{"role": "user", "content": tree["instruction"]}]
    node, turn, out = tree.get("root"), 1, []
    tree_id = str(tree.get("id", where))
    while node:
        actions = node.get("actions") if isinstance(node, dict) else None
        if not isinstance(actions, list) or not all(
            isinstance(a, dict) and isinstance(a.get("text"), str) for a in actions
        ):
            raise RecordError(f"turn {turn}: 'actions' must be a list of {{text, correct}}", where)
        good = [a for a in actions if a.get("correct")]
        bad = [a for a in actions if not a.get("correct")]
        if not good or not bad:
            dropped[f"turn with only {'correct' if good else 'incorrect'} actions (no pair)"] += 1
        for g in good:
            for b in bad:
                out.append(
                    pair(
                        list(history),
                        g["text"],
                        b["text"],
                        source="ultrainteract",
                        meta={"tree_id": tree_id, "turn": turn},
                    )
                )
        if not good:
            break
        follow = good[0]
        history.append({"role": "assistant", "content": follow["text"]})
        if follow.get("feedback"):
            history.append({"role": "user", "content": follow["feedback"]})
        node, turn = follow.get("next"), turn + 1
    return out
