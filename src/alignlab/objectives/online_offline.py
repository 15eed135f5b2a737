"""Offline objectives that also train on rollouts: ``copg`` and ``a_lol`` (shared/METHODS.md section H lists
them as usable on rollouts).

Their math is unchanged (``pairwise_margin_variants.copg``, ``reward_weighted.a_lol``); these plans only tell
the rollout source to write the judge's rewards into each rollout record as its ``scores`` and a ranking by
reward (``RolloutPlan.records = "ratings"``), so the objective's own view is built from them:

- ``copg`` (Flet-Berliac et al. 2024): every pair of a prompt's K samples (ties are pairs with a zero reward
  gap, whose only term is (β/2)·(ρ_1 − ρ_2)²), with the reward gap r_1 − r_2 as the pair's margin;
- ``a_lol`` (Baheti et al. 2023): each sample with A = R − V(x), V(x) the mean reward of the prompt's K
  samples (the data has no reference value head), kept when A > 0, weighted by the clipped π_θ/π_ref.

Without an ``online:`` section they train on fixed data as before. ``c_rlft`` is not on rollouts: its
classes are the data's SOURCES (expert vs sub-optimal writers), and every rollout has one source, the
policy; classes drawn from the reward instead are Quark's quantile tags (``quark`` with ``num_quantiles: 2``).
"""

from __future__ import annotations

from typing import Any

from alignlab.objectives.rollouts import RolloutPlan, rollout_plan


@rollout_plan("copg")
def _copg_plan(params: dict[str, Any]) -> RolloutPlan:
    # "grpo" is not used: the objective reads the rewards from the records, not advantages
    return RolloutPlan("grpo", records="ratings", min_samples=2)


@rollout_plan("a_lol")
def _a_lol_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("grpo", records="ratings", min_samples=2)
