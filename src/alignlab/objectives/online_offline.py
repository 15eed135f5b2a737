"""Offline objectives that also train on rollouts: ``copg``, ``a_lol`` and ``c_rlft`` (shared/METHODS.md
section H lists them as usable on rollouts).

Their math is unchanged (``pairwise_margin_variants.copg``, ``reward_weighted.a_lol``); these plans only tell
the rollout source to write the judge's rewards into each rollout record as its ``scores`` and a ranking by
reward (``RolloutPlan.records = "ratings"``), so the objective's own view is built from them:

- ``copg`` (Flet-Berliac et al. 2024): every pair of a prompt's K samples (ties are pairs with a zero reward
  gap, whose only term is (β/2)·(ρ_1 − ρ_2)²), with the reward gap r_1 − r_2 as the pair's margin;
- ``a_lol`` (Baheti et al. 2023): each sample with A = R − V(x), V(x) the mean reward of the prompt's K
  samples (the data has no reference value head), kept when A > 0, weighted by the clipped π_θ/π_ref;
- ``c_rlft`` (Wang et al. 2023, OpenChat): a MIXTURE of its two classes, as the paper's data is. The expert
  class is fixed data (``data.train``, tagged and weighted by ``c_rlft_prepare`` as offline); the policy's
  own samples are the sub-optimal class: sampled after the expert tag (the condition the policy is used
  with), trained after the sub-optimal tag with the sub-optimal class reward as their weight
  (``train/rollout_conditioned.py``), ``online.offline_per_step`` expert groups beside every rollout
  minibatch (``train/mixed_source.py``). The loss is c_rlft's own; the judge only monitors the samples.

Without an ``online:`` section they train on fixed data as before.
"""

from __future__ import annotations

import inspect
from typing import Any

from alignlab.objectives.conditional import c_rlft_prepare
from alignlab.objectives.rollouts import RolloutPlan, rollout_plan


@rollout_plan("copg")
def _copg_plan(params: dict[str, Any]) -> RolloutPlan:
    # "grpo" is not used: the objective reads the rewards from the records, not advantages
    return RolloutPlan("grpo", records="ratings", min_samples=2)


@rollout_plan("a_lol")
def _a_lol_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("grpo", records="ratings", min_samples=2)


@rollout_plan("c_rlft")
def _c_rlft_plan(params: dict[str, Any]) -> RolloutPlan:
    # the advantages are not read (the loss is the class-weighted NLL); "grpo" with no scaling is defined
    # for one sample per prompt
    defaults = {
        k: v.default for k, v in inspect.signature(c_rlft_prepare).parameters.items() if k != "records"
    }
    settings = {**defaults, **{k: v for k, v in params.items() if k in defaults}}
    return RolloutPlan(
        "grpo",
        {"scale": "none"},
        records="demonstrations",
        mixes_offline=True,
        source="conditioned",
        source_params={
            "sample_prefix": settings["expert_tag"],
            "train_prefix": settings["suboptimal_tag"],
            "weight": float(settings["suboptimal_weight"]),
        },
    )
