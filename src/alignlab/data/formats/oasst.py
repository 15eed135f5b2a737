"""OpenAssistant conversations (``oasst``): message trees whose sibling assistant replies are ranked.

Schema read from the OpenAssistant/oasst1 dataset card ("Dataset Structure", "JSON Example: Message" and
"JSON Example: Conversation Tree"): each message has ``message_id``, ``parent_id`` (null for the initial
prompt), ``text``, ``role`` ("prompter" or "assistant", strictly alternating from root to leaf),
``lang``, ``deleted``, ``review_result``, ``rank`` ("the most preferred message has rank 0"; set on
siblings of a node with several replies), ``message_tree_id`` and more. Files come flat (one message a
row, ``*.messages.jsonl.gz`` / the parquet on the Hub) or nested (``*.trees.jsonl.gz``: ``{"message_tree_id",
"prompt": {message..., "replies": [...]}}``); both are read.

Each message with two or more ranked assistant replies becomes one record: the prompt is the thread from
the root to that message as chat messages (prompter -> user, assistant -> assistant), the completions are
the ranked replies, the ranking their ranks (renumbered 0, 1, ... keeping ties). Replies left out (no rank,
or deleted) are reported as dropped with the reason; a reply whose thread cannot be followed to the root
is an error naming its row. Reading only: there is no writer for this format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alignlab.data.formats.base import Dropped, Format, Outcome, Row, WhereRow, checked, has_columns
from alignlab.data.records import Record, RecordError

FIX = "an OpenAssistant message is {message_id, parent_id, role: prompter|assistant, text, rank}"
ROLES = {"prompter": "user", "assistant": "assistant"}


def _flatten(rows: Iterable[WhereRow]) -> Iterator[tuple[str, Row | RecordError]]:
    """Nested trees -> flat messages with parent_id set; flat rows pass through."""
    for where, row in rows:
        root = row.get("prompt")
        if "message_id" in row or not isinstance(root, dict):
            yield where, row
            continue
        stack: list[tuple[Any, Any, str]] = [(root, None, "prompt")]
        while stack:
            node, parent, path = stack.pop()
            here = f"{where} {path}"
            replies = node.get("replies") if isinstance(node, dict) else None
            if not isinstance(node, dict) or not isinstance(replies or [], list):
                what = "a message object" if not isinstance(node, dict) else "'replies' as a list"
                yield here, RecordError(f"expected {what} here", here, FIX + ", replies: [...]")
                continue
            message = {k: v for k, v in node.items() if k != "replies"}
            message.setdefault("parent_id", parent)
            yield here, message
            for index in reversed(range(len(replies or []))):
                stack.append((replies[index], node.get("message_id"), f"{path}.replies[{index}]"))


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _message_problem(row: Row) -> str | None:
    """Why a flat message row cannot be used, naming the field and what it must be; None if fine."""
    if not _is_id(row.get("message_id")):
        return f"'message_id' must be text, got {row.get('message_id')!r:.40}"
    if row.get("parent_id") is not None and not _is_id(row["parent_id"]):
        return f"'parent_id' must be text or null, got {row['parent_id']!r:.40}"
    if row.get("role") not in ROLES:
        return f"'role' must be 'prompter' or 'assistant', got {row.get('role')!r:.40}"
    if not isinstance(row.get("text"), str):
        return f"'text' must be text, got {type(row.get('text')).__name__}"
    if row.get("deleted") is not None and not isinstance(row["deleted"], bool):
        return f"'deleted' must be true or false, got {row['deleted']!r:.40}"
    rank = row.get("rank")
    if rank is None or (isinstance(rank, float) and math.isnan(rank)):
        return None  # unranked: reported as dropped when it is a compared reply
    if isinstance(rank, bool) or not isinstance(rank, (int, float)) or rank < 0 or rank != int(rank):
        return f"'rank' must be a whole number >= 0 (0 = most preferred) or null, got {rank!r:.40}"
    return None


def _to_records(rows: Iterable[WhereRow]) -> Iterator[Outcome]:
    messages: dict[Any, tuple[str, Row]] = {}
    children: dict[Any, list[Any]] = {}
    refused: dict[Any, int] = {}  # replies refused per parent: their siblings are still a comparison
    for where, row in _flatten(rows):
        if isinstance(row, RecordError):
            yield row
            continue
        problem = _message_problem(row)
        if problem is not None:
            yield RecordError(problem, where, FIX)
            if _is_id(row.get("parent_id")) and row.get("role") == "assistant":
                refused[row["parent_id"]] = refused.get(row["parent_id"], 0) + 1
            continue
        mid = row["message_id"]
        if mid in messages:
            yield RecordError(
                f"message_id {mid!r:.60} appears again (first at {messages[mid][0]})",
                where,
                "each message must have its own message_id; remove the duplicate row",
            )
            continue
        messages[mid] = (where, row)
        if row.get("parent_id") is not None:
            children.setdefault(row["parent_id"], []).append(mid)
    for parent_id, kids in children.items():
        replies = [k for k in kids if messages[k][1]["role"] == "assistant"]
        if len(replies) + refused.get(parent_id, 0) < 2:
            continue  # a single reply is part of a thread, not a comparison
        kept = []
        for k in replies:
            where, row = messages[k]
            if row.get("deleted"):
                yield Dropped(where, "oasst reply deleted")
            elif row.get("rank") is None or (isinstance(row["rank"], float) and math.isnan(row["rank"])):
                yield Dropped(where, "oasst reply has no rank among its siblings")
            else:
                kept.append(k)
        first_where = messages[replies[0]][0]
        if len(kept) < 2:
            if kept:
                yield Dropped(messages[kept[0]][0], "oasst reply is the only ranked one among its siblings")
            continue
        try:
            prompt = _thread(parent_id, messages, first_where)
        except RecordError as err:
            for k in kept[1:]:
                yield Dropped(messages[k][0], "oasst reply whose thread cannot be followed (see the error)")
            yield err
            continue
        ranks = [int(messages[k][1]["rank"]) for k in kept]
        dense = {r: i for i, r in enumerate(sorted(set(ranks)))}
        parent_row = messages[parent_id][1]
        meta = {"message_ids": kept}
        for key in ("lang", "message_tree_id"):
            if parent_row.get(key) is not None:
                meta[key] = parent_row[key]
        record = Record(
            prompt=prompt,
            completions=[messages[k][1]["text"] for k in kept],
            ranking=[dense[r] for r in ranks],
            source="oasst",
            id=str(parent_id),
            meta=meta,
        )
        yield checked(record, first_where)


def _thread(message_id: str, messages: dict[str, tuple[str, Row]], where: str) -> list[dict[str, str]]:
    thread = []
    seen = set()
    current: str | None = message_id
    while current is not None:
        if current not in messages:
            raise RecordError(
                f"parent message {current!r} is not in the data",
                where,
                "read the whole message tree (all its rows)",
            )
        if current in seen:
            raise RecordError(f"message {current!r} is its own ancestor", where, "fix the parent_id links")
        seen.add(current)
        row = messages[current][1]
        thread.append({"role": ROLES[row["role"]], "content": row["text"]})
        current = row.get("parent_id")
    return thread[::-1]


def _detect(rows: Sequence[Row]) -> bool:
    if has_columns(rows, "message_id", "parent_id", "role", "text"):
        return True
    return has_columns(rows, "message_tree_id", "prompt") and isinstance(rows[0]["prompt"], dict)


OASST = Format(
    "oasst",
    "OpenAssistant message trees (ranked sibling replies)",
    _detect,
    _to_records,
    None,
    ("message_id", "parent_id", "role", "text", "rank"),
)
