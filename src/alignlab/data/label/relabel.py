"""Reward-augmented preference data (Zhang et al. 2024, "Reward-Augmented Data Enhances Direct Preference
Alignment of LLMs", arXiv 2410.08067).

Each pair (x, y_w, y_l) with judge scores (s_w, s_l) becomes two pairs conditioned on a target score:
x_w = "generate a response of score s_w" + x with y_w ≻ y_l, and x_l = "… of score s_l" + x with
y_l ≻ y_w (y_l is the better answer to a request for a response of its own, lower, score). DPO then
trains on the union; at inference the prompt asks for the highest score. Pairs with equal scores carry no
conditioning signal and are left out (counted). Checked: METHODS.md `reward_augmented_relabel` block
(abstract + recall); the conditioning goes into a system message by default (``template``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from alignlab.data.records import Record
from alignlab.data.tools import register_tool

TEMPLATE = "Generate a response of score {score:g} (out of {top:g})."


def conditioned_prompt(
    prompt: str | list[dict[str, str]], score: float, top: float, template: str = TEMPLATE
) -> list[dict[str, str]]:
    system = {"role": "system", "content": template.format(score=score, top=top)}
    turns = (
        [{"role": "user", "content": prompt}]
        if isinstance(prompt, str)
        else [m for m in prompt if m["role"] != "system"]
    )
    return [system, *turns]


@register_tool(
    "reward_augmented_relabel",
    kind="label",
    paper="Zhang et al. 2024 'Reward-Augmented Data Enhances Direct Preference Alignment of LLMs' (arXiv 2410.08067)",
    test="tests/data/test_label.py::test_reward_augmented_*: size doubles; chosen matches the conditioned score",
    checked="METHODS.md reward_augmented_relabel block (abstract + recall)",
)
def reward_augmented_relabel(
    records: Sequence[Record], aspect: str, top: float | None = None, template: str = TEMPLATE
) -> tuple[list[Record], Counter]:
    """Two score-conditioned pairs per scored pair; ``aspect`` names the score in ``record.scores``; ``top``
    (the best score, for the template) defaults to the highest score seen."""
    dropped: Counter = Counter()
    usable = []
    for record in records:
        if record.k != 2 or record.ranking is None or record.scores is None:
            dropped["not a scored pair (K = 2 with ranking and scores)"] += 1
        elif any(aspect not in s for s in record.scores):
            dropped[f"pair without score {aspect!r}"] += 1
        else:
            usable.append(record)
    best = top if top is not None else max((s[aspect] for r in usable for s in r.scores), default=0.0)
    out = []
    for record in usable:
        w, l = (0, 1) if record.ranking[0] <= record.ranking[1] else (1, 0)
        s_w, s_l = record.scores[w][aspect], record.scores[l][aspect]
        if s_w == s_l:
            dropped["pair with equal scores"] += 1
            continue
        for target, first, second in ((s_w, w, l), (s_l, l, w)):
            out.append(
                dataclasses.replace(
                    record,
                    prompt=conditioned_prompt(record.prompt, target, best, template),
                    completions=[record.completions[first], record.completions[second]],
                    ranking=[0, 1],
                    scores=[record.scores[first], record.scores[second]],
                    critique=None,
                    spans=None,
                    roles=None,
                    context_prefixes=None,
                    meta={**record.meta, "conditioned_score": target},
                    id=None if record.id is None else f"{record.id}:score={target:g}",
                )
            )
    return out, dropped
