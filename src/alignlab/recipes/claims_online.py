"""Claims of the online-RL papers (METHODS section H) that a tabular world can test, for
``alignlab sim reproduce``. Each returns (passed, result text, numbers) like the claims in ``claims.py``;
the text says what was measured whether or not it agrees with the paper.

Both run on tabular bandit worlds (one completion = one action) rather than the full text loop: exact
expected gold reward and KL, and only the sampling noise the method itself introduces.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from alignlab.judges.conservative_ensemble import conservative_reward
from alignlab.sim import bandit_rl
from alignlab.sim.tabular import TabularWorld


def _world(seed: int, prompts: int, completions: int, ref_scale: float = 1.5) -> TabularWorld:
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(prompts, completions, generator=gen, dtype=torch.float64) * ref_scale
    reward = torch.randn(prompts, completions, generator=gen, dtype=torch.float64)
    return TabularWorld(ref_logp=ref, reward=reward)


def online_rl_beats_offline_dpo(
    budgets: tuple[int, ...] = (256, 1024), seeds: int = 5, beta: float = 0.1
) -> tuple[bool, str, dict[str, Any]]:
    """On-policy RLOO from the gold reward vs DPO on π_ref pairs labelled by the gold preference, the same
    number of judge calls (one call = one reward of one sample, or one pair label), the same β.
    PASS when online RL has the higher mean gold reward at the largest budget."""
    rows: dict[int, dict[str, list[float]]] = {}
    optimum = []
    for budget in budgets:
        out = {"online_gold": [], "online_kl": [], "dpo_gold": [], "dpo_kl": []}
        for seed in range(seeds):
            world = _world(seed, 4, 16)
            run = bandit_rl.online_rl(world, budget, beta, group_size=4, lr=0.3, seed=seed)
            dpo = bandit_rl.dpo_on_pairs(
                world, bandit_rl.sample_labelled_pairs(world, budget, seed=seed), beta
            )
            out["online_gold"].append(world.expected_reward(run.policy))
            out["online_kl"].append(world.kl_to_reference(run.policy))
            out["dpo_gold"].append(world.expected_reward(dpo))
            out["dpo_kl"].append(world.kl_to_reference(dpo))
            if budget == budgets[0]:
                optimum.append(world.expected_reward(world.dpo_optimum(beta)))
        rows[budget] = {k: float(np.mean(v)) for k, v in out.items()}
    last = rows[budgets[-1]]
    passed = last["online_gold"] > last["dpo_gold"]
    parts = [
        f"{b} calls: online {r['online_gold']:.2f} (KL {r['online_kl']:.2f}) vs DPO {r['dpo_gold']:.2f} "
        f"(KL {r['dpo_kl']:.2f})"
        for b, r in rows.items()
    ]
    text = (
        "mean gold reward over 5 worlds — "
        + "; ".join(parts)
        + f"; π_ref·exp(r/β)/Z reaches {np.mean(optimum):.2f}. DPO on finite labels overshoots the KL of the "
        "regularised optimum; with few calls it is ahead, online RL overtakes it as the budget grows"
    )
    return passed, text, {"by_budget": rows, "optimum_gold": float(np.mean(optimum))}


def _gold_curve(world: TabularWorld, reward: torch.Tensor, betas: list[float]) -> list[float]:
    """Gold reward of the KL-regularised optimum of the proxy ``reward`` at each β."""
    table = reward.reshape(world.num_prompts, world.num_completions)
    return [world.expected_reward(bandit_rl.regularised_optimum(world, table, b)) for b in betas]


def conservative_ensemble_overoptimisation(
    seeds: int = 5, members: int = 5, uwo_coef: float = 0.5
) -> tuple[bool, str, dict[str, Any]]:
    """Optimise E_π[R] − β·KL exactly (π ∝ π_ref·exp(R/β)) for a sweep of β against a single proxy RM and
    against mean / WCO / UWO of a 5-member ensemble, every member fitted by Bradley–Terry to 600 π_ref
    pairs with 25% flipped labels (bootstrap resample, own random init), and read the gold reward along
    the way. PASS when WCO and UWO both end (smallest β, largest KL) with more gold reward than the single
    proxy; the fall from each curve's own peak is reported whether or not it is smaller."""
    betas = [10 * 0.6**i for i in range(16)]
    curves: dict[str, list[list[float]]] = {k: [] for k in ("single", "mean", "wco", "uwo")}
    kls = []
    for seed in range(seeds):
        world = _world(100 + seed, 8, 32)
        pairs = bandit_rl.sample_labelled_pairs(world, 600, seed=seed, flip_rate=0.25)
        tables = torch.stack(
            [bandit_rl.fit_reward_table(world, pairs, seed=10 * seed + m) for m in range(members)]
        )
        z = bandit_rl.standardise(tables, world)
        flat = z.reshape(members, -1)
        proxies = {
            "mean": conservative_reward(flat, "mean"),
            "wco": conservative_reward(flat, "wco"),
            "uwo": conservative_reward(flat, "uwo", uwo_coef),
        }

        curves["single"].append(
            list(np.mean([_gold_curve(world, z[m], betas) for m in range(members)], axis=0))
        )
        for name, proxy in proxies.items():
            curves[name].append(_gold_curve(world, proxy, betas))
        kls.append([world.kl_to_reference(bandit_rl.regularised_optimum(world, z[0], b)) for b in betas])
    mean_curves = {k: np.mean(v, axis=0) for k, v in curves.items()}
    summary = {
        k: {"peak": float(c.max()), "final": float(c[-1]), "fall_from_peak": float(c.max() - c[-1])}
        for k, c in mean_curves.items()
    }
    single = summary["single"]
    passed = summary["wco"]["final"] > single["final"] and summary["uwo"]["final"] > single["final"]
    text = (
        "gold reward peak → final (KL up to {:.1f} nats): single RM {:.2f} → {:.2f}; mean {:.2f} → {:.2f}; "
        "WCO {:.2f} → {:.2f}; UWO(λ={}) {:.2f} → {:.2f}. The ensembles end higher than the single proxy; "
        "their fall from their own (higher) peaks is {:.2f}/{:.2f}/{:.2f} vs {:.2f} for the single RM, and "
        "the plain mean ensemble does as well as WCO/UWO here"
    ).format(
        float(np.mean(kls, axis=0)[-1]),
        single["peak"],
        single["final"],
        summary["mean"]["peak"],
        summary["mean"]["final"],
        summary["wco"]["peak"],
        summary["wco"]["final"],
        uwo_coef,
        summary["uwo"]["peak"],
        summary["uwo"]["final"],
        summary["mean"]["fall_from_peak"],
        summary["wco"]["fall_from_peak"],
        summary["uwo"]["fall_from_peak"],
        single["fall_from_peak"],
    )
    numbers = {
        "summary": summary,
        "betas": betas,
        "kl": list(np.mean(kls, axis=0)),
        "curves": {k: list(v) for k, v in mean_curves.items()},
    }
    return passed, text, numbers
