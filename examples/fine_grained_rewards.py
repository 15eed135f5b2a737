"""Dense rewards for examples/fine_grained_rlhf.yaml: two "reward models" written on tokens, as Fine-Grained
RLHF does with its segment-level reward models (one weight each).

- repetition (weight 0.2): −1 on every token id that already occurred in the completion (a per-token error);
- correctness (weight 1.0): +1 on the last token when the first number in the answer is right.
"""

from __future__ import annotations

import re

WEIGHTS = {"repetition": 0.2, "correctness": 1.0}


def repetition_and_answer(
    completions: list[str], completion_ids: list[list[int]], answer: list[str], **_
) -> list[list[float]]:
    rows = []
    for text, ids, expected in zip(completions, completion_ids, answer):
        rewards, seen = [0.0] * len(ids), set()
        for t, token in enumerate(ids):
            if token in seen:
                rewards[t] -= WEIGHTS["repetition"]
            seen.add(token)
        number = re.search(r"-?\d+", text)
        if ids and number is not None and number.group() == expected:
            rewards[-1] += WEIGHTS["correctness"]
        rows.append(rewards)
    return rows
