"""Varco Arena (Son et al. 2024, arXiv 2411.01281): reference-free benchmarking by single-elimination tournaments.

For every prompt, the M systems' outputs are placed in a bracket in a seeded random order; each match is judged
(the two outputs shown in a random order, so position bias averages out) and the winner advances; a bye (odd
field) advances without a match, so each prompt costs exactly M − 1 matches. All matches of all prompts are then
rated with ``elo_bt`` (Bradley–Terry with bootstrap intervals) and ranked.

The judge gives P(first ≻ second) (``Judge.prefer_many`` or a function ``f(prompt, a, b) -> float``); P = ½ is a
tie for the ratings and a seeded coin flip for who advances.

checked: Son et al. 2024 abstract and §2 (unverified in code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alignlab.eval.elo import elo_bt
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import MetricResult


def _prefer(judge: Any, prompt: Any, a: str, b: str) -> float:
    if hasattr(judge, "prefer_many"):
        return float(judge.prefer_many([prompt], [a], [b])[0])
    return float(judge(prompt, a, b))


def bracket(
    prompt: Any, outputs: Mapping[str, str], judge: Any, rng: np.random.Generator
) -> list[tuple[str, str, str]]:
    """The matches (model_a, model_b, winner) of one single-elimination bracket."""
    field = list(outputs)
    rng.shuffle(field)
    matches = []
    while len(field) > 1:
        advance = [field.pop()] if len(field) % 2 else []  # a bye
        for i in range(0, len(field), 2):
            a, b = (field[i], field[i + 1]) if rng.random() < 0.5 else (field[i + 1], field[i])
            p = _prefer(judge, prompt, outputs[a], outputs[b])
            if not 0.0 <= p <= 1.0:
                raise MetricError(
                    f"the judge returned P = {p!r} for {a} vs {b} on prompt {prompt!r}; expected [0, 1]"
                )
            winner = "model_a" if p > 0.5 else "model_b" if p < 0.5 else "tie"
            matches.append((a, b, winner))
            if winner == "tie":
                advance.append(a if rng.random() < 0.5 else b)
            else:
                advance.append(a if winner == "model_a" else b)
        field = advance
    return matches


@register_metric(
    "varco_arena",
    paper="Son et al. 2024, Varco Arena (arXiv 2411.01281)",
    inputs="battles",
    checked="Son et al. 2024 abstract/§2 (unverified in code): per-prompt single elimination, then Elo",
)
def varco_arena(
    *,
    prompts: Sequence[Any],
    outputs: Mapping[str, Sequence[str]],
    judge: Any,
    seed: int = 0,
    rounds: int = 200,
) -> MetricResult:
    """Single-elimination tournaments per prompt, judged pairwise, rated with Bradley–Terry (Elo ± interval)."""
    if len(outputs) < 2:
        raise MetricError(f"varco_arena needs at least 2 systems, got {len(outputs)}")
    for name, column in outputs.items():
        if len(column) != len(prompts):
            raise MetricError(f"system '{name}' has {len(column)} outputs for {len(prompts)} prompts")
    rng = np.random.default_rng(seed)
    a, b, w, per_prompt = [], [], [], []
    for i, prompt in enumerate(prompts):
        matches = bracket(prompt, {m: outputs[m][i] for m in outputs}, judge, rng)
        per_prompt.append(len(matches))
        for x, y, z in matches:
            a.append(x)
            b.append(y)
            w.append(z)
    result = elo_bt(model_a=a, model_b=b, winner=w, rounds=rounds, seed=seed)
    result.metric = "varco_arena"
    ranking = sorted(outputs, key=lambda m: -result.estimates[f"rating/{m}"].value)
    result.details.update({"matches_per_prompt": per_prompt, "ranking": ranking})
    return result
