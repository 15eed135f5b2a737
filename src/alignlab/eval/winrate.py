"""Win rate against a reference policy (AlpacaEval / AlpacaFarm; Dubois et al. 2023, arXiv 2305.14387).

p_i ∈ [0, 1] is the judge's verdict on prompt i (1: the model wins, 0: the reference wins, ½: a tie, or
a probability for soft judges). win rate = 100·mean(p), standard error = 100·sem(p) (sample std with
ddof = 1 over √n); the discrete win rate rounds each p_i to {0, ½, 1} first. With the noise-free gold
annotator p_i is 1, ½ or 0 for a higher, equal or lower gold utility ("wins + ½ ties").

checked: tatsu-lab/alpaca_eval src/alpaca_eval/metrics/winrate.py (get_winrate) and
metrics/glm_winrate.py (preference mapping 0 → 1.5, then − 1), as summarised in METHODS.md "winrate".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from alignlab.eval.inputs import check_range, invalid_report
from alignlab.eval.registry import MetricError, register_metric
from alignlab.eval.uncertainty import MetricResult, against, mean_estimate


@dataclass
class WinRate:
    win_rate: float  # percent
    standard_error: float  # percent
    discrete_win_rate: float
    wins: int
    ties: int
    losses: int
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def win_rate(p: Sequence[float]) -> WinRate:
    """Win rate from per-prompt verdicts p_i ∈ [0, 1] (see the module docstring)."""
    values = [float(x) for x in p]
    if not values:
        raise ValueError("win_rate: no verdicts (give at least one prompt)")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(
            "win_rate: verdicts must lie in [0, 1] (1 = model wins, 0.5 = tie, 0 = reference wins)"
        )
    n = len(values)
    mean = sum(values) / n
    sem = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else float("nan")
    discrete = [0.0 if v < 1 / 3 else 1.0 if v > 2 / 3 else 0.5 for v in values]
    return WinRate(
        win_rate=100 * mean,
        standard_error=100 * sem,
        discrete_win_rate=100 * sum(discrete) / n,
        wins=sum(d == 1.0 for d in discrete),
        ties=sum(d == 0.5 for d in discrete),
        losses=sum(d == 0.0 for d in discrete),
        n=n,
    )


def from_preferences(preferences: Sequence[float]) -> WinRate:
    """AlpacaEval's encoding: 2 = model preferred, 1 = reference preferred, 0 = tie (→ 1.5), then − 1."""
    return win_rate([(1.5 if x == 0 else float(x)) - 1.0 for x in preferences])


def judged_win_rate(
    judge: Any, prompts: Sequence[Any], model: Sequence[str], reference: Sequence[str]
) -> WinRate:
    """Win rate of ``model`` completions over ``reference`` ones under ``judge.prefer_many`` (P(model ≻ ref))."""
    if not (len(prompts) == len(model) == len(reference)):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(model)} model and {len(reference)} reference completions"
        )
    return win_rate(judge.prefer_many(list(prompts), list(model), list(reference)).tolist())


@register_metric(
    "winrate",
    paper="Dubois et al. 2023, AlpacaFarm (arXiv 2305.14387); AlpacaEval",
    inputs="judgements",
    checked="tatsu-lab/alpaca_eval metrics/winrate.py get_winrate; metrics/glm_winrate.py (0 → 1.5, then − 1)",
)
def winrate(
    *, verdicts: Sequence[Any], encoding: str = "probability", on_invalid: str = "raise"
) -> MetricResult:
    """Win rate of a model against a baseline: 100·mean p_i with 100·sem, and the discrete win rate.

    ``verdicts``: p_i = P(model ≻ baseline) ∈ [0, 1] (``encoding="probability"``), or AlpacaEval's
    preferences 2 = model, 1 = baseline, 0 = tie (``encoding="alpaca_eval"``: p = (0 → 1.5) − 1).
    A verdict outside its range or NaN is reported by record (``on_invalid``: raise or skip).
    """
    notes: list[str] = []
    if encoding == "alpaca_eval":
        low, high = 0.0, 2.0
    elif encoding == "probability":
        low, high = 0.0, 1.0
    else:
        raise MetricError(f"winrate: encoding must be probability or alpaca_eval, got '{encoding}'")
    values, _ = check_range(list(verdicts), "verdicts", low, high, on_invalid, notes)
    if encoding == "alpaca_eval":
        bad = {i: f"not 0, 1 or 2 ({v:g})" for i, v in enumerate(values) if v not in (0.0, 1.0, 2.0)}
        invalid_report("verdicts", bad, len(values), "raise", notes)
        values = np.where(values == 0, 1.5, values) - 1.0
    result = win_rate(values.tolist())
    rate = mean_estimate(values, 100.0, (0.0, 100.0))
    discrete = np.array([0.0 if v < 1 / 3 else 1.0 if v > 2 / 3 else 0.5 for v in values])
    return MetricResult(
        "winrate",
        {
            "win_rate": rate,
            "discrete_win_rate": mean_estimate(discrete, 100.0, (0.0, 100.0)),
        },
        {
            "wins": result.wins,
            "ties": result.ties,
            "losses": result.losses,
            "n": result.n,
            "verdict": against(rate, 50.0, "model better than baseline", "baseline better than model"),
        },
        notes,
    )
