"""Varco Arena (Son et al. 2024, arXiv 2411.01281): reference-free benchmarking by single-elimination tournaments.

For every prompt, the M systems' outputs are placed in a bracket in a seeded random order; each match is judged
(the two outputs shown in a random order, so position bias averages out) and the winner advances; a bye (odd
field) advances without a match, so each prompt costs exactly M − 1 matches. All matches of all prompts are then
rated with ``elo_bt`` (Bradley–Terry with bootstrap intervals) and ranked.

The judge gives P(first ≻ second) (``Judge.prefer_many`` or a function ``f(prompt, a, b) -> float``); P = ½ is a
tie for the ratings and a seeded coin flip for who advances.

Agreement with a reference ranking (``reference``: a rating per system, e.g. ``elo_bt`` on round-robin battles of
the same systems, or Chatbot Arena scores), as the paper reports it: Spearman's ρ between the tournament's
ratings and the reference = Pearson correlation of their ranks (average ranks for ties). Its 95% interval is a
percentile bootstrap over prompts (all matches of a resampled prompt move together, the unit the tournament is
run on): resample prompts with replacement, refit Bradley–Terry on their matches, recompute ρ.

checked: Son et al. 2024 abstract and §2 (unverified in code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alignlab.eval.elo import elo_bt, encode, fit_bt
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import Estimate, MetricResult, percentile_ci


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing the mean of their ranks."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ: the Pearson correlation of the average ranks (NaN when either side is constant)."""
    rx, ry = average_ranks(np.asarray(x)), average_ranks(np.asarray(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


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
    checked="Son et al. 2024 abstract/§2 (unverified in code): per-prompt single elimination, then Elo; "
    "Spearman's rho against a reference ranking, checked against scipy.stats.spearmanr in the tests",
)
def varco_arena(
    *,
    prompts: Sequence[Any],
    outputs: Mapping[str, Sequence[str]],
    judge: Any,
    seed: int = 0,
    rounds: int = 200,
    reference: Mapping[str, float] | None = None,
) -> MetricResult:
    """Single-elimination tournaments per prompt, judged pairwise, rated with Bradley–Terry (Elo ± interval);
    with ``reference`` ratings, Spearman's ρ against them with a bootstrap-over-prompts interval."""
    if len(outputs) < 2:
        raise MetricError(f"varco_arena needs at least 2 systems, got {len(outputs)}")
    for name, column in outputs.items():
        if len(column) != len(prompts):
            raise MetricError(f"system '{name}' has {len(column)} outputs for {len(prompts)} prompts")
    if reference is not None:
        missing = sorted(set(outputs) - set(reference))
        if missing:
            raise MetricError(f"varco_arena: the reference has no rating for {', '.join(missing)}")
        if len({float(reference[m]) for m in outputs}) < 2:
            raise MetricError("varco_arena: the reference ratings are all equal; Spearman's ρ is undefined")
    rng = np.random.default_rng(seed)
    a, b, w, per_prompt, prompt_of = [], [], [], [], []
    for i, prompt in enumerate(prompts):
        matches = bracket(prompt, {m: outputs[m][i] for m in outputs}, judge, rng)
        per_prompt.append(len(matches))
        for x, y, z in matches:
            a.append(x)
            b.append(y)
            w.append(z)
            prompt_of.append(i)
    result = elo_bt(model_a=a, model_b=b, winner=w, rounds=rounds, seed=seed)
    result.metric = "varco_arena"
    ranking = sorted(outputs, key=lambda m: -result.estimates[f"rating/{m}"].value)
    result.details.update({"matches_per_prompt": per_prompt, "ranking": ranking})
    if reference is not None:
        ref = [float(reference[m]) for m in outputs]
        result.estimates["spearman"] = rank_agreement(
            a, b, w, np.array(prompt_of), len(prompts), list(outputs), ref, rounds, seed
        )
        result.details["reference"] = {m: float(reference[m]) for m in outputs}
    return result


def rank_agreement(
    a: list[str],
    b: list[str],
    w: list[str],
    prompt_of: np.ndarray,
    n_prompts: int,
    systems: list[str],
    reference: list[float],
    rounds: int,
    seed: int,
) -> Estimate:
    """Spearman's ρ of the BT ratings against ``reference`` with a percentile bootstrap over prompts."""
    names, pairs, y = encode(a, b, w, "raise", [])
    cols = [names.index(m) for m in systems]
    rho = lambda idx: spearman(fit_bt(pairs[idx], y[idx], len(names))[cols], reference)  # noqa: E731
    point = rho(np.arange(len(y)))
    by_prompt = [np.flatnonzero(prompt_of == i) for i in range(n_prompts)]
    rng = np.random.default_rng(seed + 1)
    samples = np.array(
        [
            rho(np.concatenate([by_prompt[i] for i in rng.integers(0, n_prompts, n_prompts)]))
            for _ in range(rounds)
        ]
    )
    samples = samples[np.isfinite(samples)]
    se = float(samples.std(ddof=1)) if samples.size > 1 else float("nan")
    ci = percentile_ci(samples) if samples.size else (float("nan"), float("nan"))
    return Estimate(point, se, ci, n=n_prompts)
