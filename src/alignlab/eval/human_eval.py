"""People as the judges of a win-rate evaluation, through the feedback app's real HTTP API.

1. The (model, baseline) output pairs are posted to a project's judge queue (``HumanJudge``: POST
   /api/judge/pairs), each pair in a seeded random order (:func:`alignlab.eval.policy_eval.judge_verdicts`); the
   app shows the two completions to annotators in its own random order too.
2. Votes are read back (GET /api/judge/answers): p_i = mean over the pair's annotators of 1 (model), 0 (baseline),
   ½ (tie or both bad). ``winrate`` gives the win rate ± SE. Pairs without votes when the wait ends are reported
   by record (never dropped silently).
3. Agreement: the project's votes one by one (GET /api/admin/projects/ID/export?aggregate=all, an admin token)
   give Fleiss' kappa over the pairs with ≥ 2 votes (Fleiss 1971: P_i = (Σ_j n_ij² − n_i)/(n_i(n_i − 1)),
   P̄ = mean P_i, p_j = Σ_i n_ij / Σ_i n_i, κ = (P̄ − Σ p_j²)/(1 − Σ p_j²)) with a bootstrap interval over pairs,
   and the raw agreement of annotator pairs on the same item; categories: first, second, tie, both bad.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.eval.policy_eval import judge_verdicts
from alignlab.eval.registry import MetricError
from alignlab.eval.uncertainty import Estimate, MetricResult, bootstrap, percentile_ci, proportion_estimate
from alignlab.eval.winrate import winrate

CATEGORIES = ("c0", "c1", "tie", "both_bad")


def vote_category(record: dict[str, Any]) -> str:
    """An exported vote (ranking [0, 1], [1, 0] or [0, 0], labels for both bad) as one nominal category."""
    ranking = record.get("ranking")
    if ranking == [0, 1]:
        return "c0"
    if ranking == [1, 0]:
        return "c1"
    if record.get("labels") == [False, False]:
        return "both_bad"
    return "tie"


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa of an items × categories count table (items with ≥ 2 votes; see the module docstring)."""
    n_i = table.sum(1)
    p_i = ((table**2).sum(1) - n_i) / (n_i * (n_i - 1))
    p_j = table.sum(0) / table.sum()
    p_e = float((p_j**2).sum())
    return float("nan") if p_e >= 1 else float((p_i.mean() - p_e) / (1 - p_e))


def agreement(votes: Sequence[dict[str, Any]], rounds: int = 500, seed: int = 0) -> MetricResult:
    """Fleiss' kappa (bootstrap interval over pairs) and pairwise raw agreement from exported votes."""
    by_item: dict[Any, list[str]] = defaultdict(list)
    for v in votes:
        by_item[(v.get("meta") or {}).get("task_id")].append(vote_category(v))
    items = [c for c in by_item.values() if len(c) >= 2]
    if not items:
        raise MetricError("no pair has two or more votes: agreement needs per_task ≥ 2")
    table = np.array([[Counter(c)[k] for k in CATEGORIES] for c in items], dtype=float)
    kappa = fleiss_kappa(table)
    samples = bootstrap(lambda idx: fleiss_kappa(table[idx]), len(items), rounds, seed)
    same = [float(a == b) for c in items for i, a in enumerate(c) for b in c[i + 1 :]]
    estimates = {"pairwise_agreement": proportion_estimate(same)}
    notes = []
    if np.isnan(kappa):
        notes.append("Fleiss' kappa is undefined: every vote fell in one category (chance agreement is 1)")
    else:
        spread = float(np.nanstd(samples, ddof=1))
        estimates["fleiss_kappa"] = Estimate(kappa, spread, percentile_ci(samples), n=len(items))
    return MetricResult("agreement", estimates, {"items": len(items), "votes": int(table.sum())}, notes)


def human_win_rate(
    judge: Any,
    prompts: Sequence[Any],
    model: Sequence[str],
    baseline: Sequence[str],
    seed: int = 0,
    on_invalid: str = "raise",
) -> MetricResult:
    """Win rate of ``model`` over ``baseline`` from people's votes (``judge``: a HumanJudge)."""
    p = judge_verdicts(judge, prompts, model, baseline, seed)
    result = winrate(verdicts=[None if np.isnan(x) else float(x) for x in p], on_invalid=on_invalid)
    result.notes = [n.replace("not a number (None)", "no votes") for n in result.notes]
    return result


def fetch_votes(url: str, admin_token: str, project_id: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every vote of a project, one per annotator and pair, through the admin export API."""
    import httpx

    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, trust_env=False) as client:
        response = client.get(
            f"/api/admin/projects/{project_id}/export",
            params={"aggregate": "all"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    if response.status_code >= 400:
        raise MetricError(
            f"GET export of project {project_id} -> {response.status_code}: {response.text[:200]}"
        )
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]
