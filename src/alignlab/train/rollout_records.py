"""A rollout as training data: the records and tokenised groups built from the SAMPLED ids (one group per
prompt, its ``n`` completions; EOS kept when emitted, nothing re-tokenised), and their form in a checkpoint
(``RolloutSource.state_dict``), read back into the same records and groups."""

from __future__ import annotations

from typing import Any

from alignlab.data.prompts import PromptRow
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup, TokenizeReport
from alignlab.generation.types import Rollout
from alignlab.train.data import PreparedData


def rollout_groups(
    rows: list[PromptRow], rollouts: list[Rollout], n: int
) -> tuple[list[Record], list[TokenizedGroup]]:
    """One record and one group per prompt row, from its ``n`` consecutive rollouts."""
    records, groups = [], []
    for i, row in enumerate(rows):
        mine = rollouts[i * n : (i + 1) * n]
        records.append(Record(row.prompt, [r.text for r in mine], source="rollout"))
        groups.append(
            TokenizedGroup(
                list(mine[0].prompt_ids),
                [list(r.completion_ids) for r in mine],
                [[] for _ in mine],
                ["" for _ in mine],
                i,
            )
        )
    return records, groups


def rollout_state(data: PreparedData) -> dict[str, Any]:
    """The live rollout for a checkpoint: its records (with the ranking, scores and weight an offline
    objective reads online) and its groups' ids and per-completion tensors."""
    return {
        "records": [
            {
                "prompt": r.prompt,
                "completions": r.completions,
                "ranking": r.ranking,
                "scores": r.scores,
                "weight": r.weight,
            }
            for r in data.records
        ],
        "groups": [
            {"prompt_ids": g.prompt_ids, "completion_ids": g.completion_ids, "rollout": g.rollout}
            for g in data.groups
        ],
    }


def rollout_from_state(live: dict[str, Any]) -> PreparedData:
    """:func:`rollout_state`'s rollout back as records and groups."""
    records = [
        Record(
            r["prompt"],
            list(r["completions"]),
            r.get("ranking"),
            scores=r.get("scores"),
            source="rollout",
            weight=float(r.get("weight", 1.0)),
        )
        for r in live["records"]
    ]
    groups = [
        TokenizedGroup(
            list(g["prompt_ids"]),
            [list(c) for c in g["completion_ids"]],
            [[] for _ in g["completion_ids"]],
            ["" for _ in g["completion_ids"]],
            i,
            rollout=dict(g["rollout"]),
        )
        for i, g in enumerate(live["groups"])
    ]
    return PreparedData(records, groups, TokenizeReport(records=len(groups), kept=len(groups)))
