"""Family H, online RL from a reward: ppo, rloo, grpo, dr_grpo, reinforce_pp, remax.

Each objective is the per-token policy loss on a rollout (the rollout source sampled, judged and scored the
completions, and computed advantages with the estimator its :class:`RolloutPlan` names), aggregated over
tokens by the ``loss_aggregation`` setting. The pieces are the RL toolkit's registries:
``advantages.ADVANTAGES``, ``kl_estimators.KL_ESTIMATORS``, ``policy_losses.POLICY_LOSSES``. KL enters
either the reward (``online.kl``: PPO, RLOO, REINFORCE++; default coefficients below) or the loss (the
objective's ``kl_coef`` and ``kl_estimator``: GRPO; TRL calls it ``beta``). Where the sources disagree both forms are exposed; see
shared/METHODS.md "Source disagreements in families H–L" and docs/online.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.kl_estimators import KL_ESTIMATORS
from alignlab.objectives.loss_aggregation import AGGREGATIONS
from alignlab.objectives.policy_losses import POLICY_LOSSES, clipped_value_loss
from alignlab.objectives.registry import objective
from alignlab.objectives.rollouts import RolloutPlan, rollout_plan
from alignlab.objectives.views import RolloutBatch

NEEDS = ("token_logps", "token_entropy_metric")  # the entropy is only logged: no gradient


def aggregate(per_token: Tensor, batch: RolloutBatch, mode: str, normalisers: Any) -> Tensor:
    """This micro-batch's share of the step's loss: ``loss_aggregation`` over the global batch's token and
    sequence counts (``normalisers``, from the loop), so the loss does not depend on how the step is cut."""
    params = {}
    if mode == "seq_mean_token_sum_norm":
        params["length_norm"] = int(batch.get("length_norm")[0]) if batch.size else 0
    return AGGREGATIONS(mode, per_token, batch.mask, normalisers, **params)


def _policy_gradient(
    batch: RolloutBatch,
    policy_loss: str,
    loss_params: dict[str, Any],
    loss_aggregation: str,
    normalisers: Any,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The aggregated policy-gradient loss (this micro-batch's share) and its metrics."""
    logps = batch.items.token_logps
    mask = batch.mask
    old = batch.get("old_logps")
    per_token, metrics = POLICY_LOSSES(policy_loss, logps, old, batch.get("advantages"), mask, **loss_params)
    if kl_coef > 0:
        kl = KL_ESTIMATORS(kl_estimator, logps, batch.get("ref_logps"), old) * mask
        per_token = per_token + kl_coef * kl
        metrics["kl_loss"] = (kl.sum() / mask.sum().clamp(min=1)).detach()
    metrics.update(_token_metrics(batch))
    return aggregate(per_token, batch, loss_aggregation, normalisers), metrics


def _token_metrics(batch: RolloutBatch) -> dict[str, Tensor]:
    with torch.no_grad():
        mask = batch.mask
        count = mask.sum().clamp(min=1)
        out = {"completion_length": mask.sum(-1).mean()}
        if batch.items.token_entropy is not None:
            out["entropy"] = (batch.items.token_entropy * mask).sum() / count
        if "ref_logps" in batch.rollout:
            # k3 ≥ 0 per sampled token (TRL's GRPO "kl"): an unbiased, non-negative estimate of
            # KL(π‖π_ref) per token while π_θ is the sampling policy (k1 can come out negative).
            k3 = KL_ESTIMATORS("k3", batch.items.token_logps, batch.rollout["ref_logps"], None)
            out["kl"] = (k3 * mask).sum() / count
        return out


def _clip_params(epsilon: float, epsilon_high: float | None) -> dict[str, Any]:
    return {"epsilon": float(epsilon), "epsilon_high": None if epsilon_high is None else float(epsilon_high)}


# ---------------------------------------------------------------------------------------------- grpo
@objective(
    "grpo",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Shao et al. 2024 (DeepSeekMath), arXiv 2402.03300",
)
def grpo(
    batch: RolloutBatch,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3_ratio",
    scale_rewards: str = "group",
    loss_aggregation: str = "token_mean",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Group Relative Policy Optimization: group-normalised advantages, token-level PPO clip, KL in the loss.

    Â_i = (R_i − mean_j R_j) / (std_j R_j + 1e-4) over the G completions of a prompt (``scale_rewards``:
    ``group`` | ``batch`` | ``none``), broadcast to every token; l_{i,t} = −min(ρ_{i,t}Â_i,
    clip(ρ_{i,t}, 1−ε, 1+ε_high)Â_i) + β·KL̂_{i,t}, ρ = π_θ/π_old.

    Defaults are TRL 1.16's GRPOConfig: β = 0 (no KL), ``loss_aggregation: token_mean`` (TRL's ``dapo``),
    ``kl_estimator: k3_ratio`` (``use_bias_correction_kl``). The DeepSeekMath paper's form is
    ``kl_coef: 0.04, kl_estimator: k3, loss_aggregation: seq_mean_token_mean`` — its k3-in-the-loss gradient
    is biased toward the forward-KL point (METHODS disagreement 7; the bandit test tells them apart).
    Checked: paper §4.1 eq. 3–4; TRL 1.16 ``GRPOTrainer._compute_loss`` and ``grpo_config.py``.
    """
    return _policy_gradient(
        batch,
        "ppo_clip",
        _clip_params(epsilon, epsilon_high),
        loss_aggregation,
        normalisers,
        kl_coef,
        kl_estimator,
    )


@rollout_plan("grpo")
def _grpo_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan(
        "grpo", {"scale": params["scale_rewards"]}, needs_reference=params["kl_coef"] > 0, min_samples=2
    )


# ------------------------------------------------------------------------------------------- dr_grpo
@objective(
    "dr_grpo",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Liu et al. 2025 (Dr. GRPO), arXiv 2503.20783",
)
def dr_grpo(
    batch: RolloutBatch,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3_ratio",
    loss_aggregation: str = "seq_mean_token_sum_norm",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO Done Right: Â_i = R_i − mean_j R_j (no std division) and the token sum divided by a constant
    L_max = ``online.sampling.max_new_tokens`` (``seq_mean_token_sum_norm``): L = Σ_i Σ_t l_{i,t}/(G·L_max),
    so a token's gradient weight does not depend on its completion's length. β = 0 as in the paper.
    Checked: paper §3.1 eq. 3; TRL 1.16 ``loss_type="dr_grpo"`` + ``scale_rewards="none"``; verl
    ``norm_adv_by_std_in_grpo=False`` + ``seq-mean-token-sum-norm``.
    """
    return _policy_gradient(
        batch,
        "ppo_clip",
        _clip_params(epsilon, epsilon_high),
        loss_aggregation,
        normalisers,
        kl_coef,
        kl_estimator,
    )


@rollout_plan("dr_grpo")
def _dr_grpo_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("dr_grpo", needs_reference=params["kl_coef"] > 0, min_samples=2)


# ---------------------------------------------------------------------------------------------- rloo
@objective(
    "rloo",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Ahmadian et al. 2024, arXiv 2402.14740; Kool et al. 2019",
)
def rloo(
    batch: RolloutBatch,
    policy_loss: str = "sequence_clip",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    loss_aggregation: str = "seq_mean_token_mean",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """REINFORCE Leave-One-Out: A_i = R_i − (1/(K−1))·Σ_{j≠i} R_j with the KL in the reward at sequence
    level, R_i = r_i − β·Σ_t (log π_old − log π_ref) (``online.kl``, default β = 0.05, k1).

    ``policy_loss``: ``sequence_clip`` (TRL 1.16: PPO clip on the sequence ratio, one value per completion)
    or ``reinforce`` (the paper: −A_i·log π_θ(y_i|x)); with one update per rollout their gradients are
    equal (ρ = 1). Checked: paper §3.2; TRL 1.16 ``RLOOTrainer`` and ``rloo_config.py`` (beta 0.05).
    """
    if policy_loss not in ("sequence_clip", "reinforce"):
        raise ValueError(
            f"rloo: policy_loss must be 'sequence_clip' (TRL) or 'reinforce' (paper), got '{policy_loss}'"
        )
    advantages = batch.get("advantages")[:, 0]  # one per completion (the same on each of its tokens)
    seq_batch = RolloutBatch(
        batch.items, {**batch.rollout, "advantages": advantages}, batch.group_index, batch.weight
    )
    params = _clip_params(epsilon, epsilon_high) if policy_loss == "sequence_clip" else {}
    return _policy_gradient(seq_batch, policy_loss, params, loss_aggregation, normalisers)


@rollout_plan("rloo")
def _rloo_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("rloo", kl_coef=0.05, kl_estimator="k1", min_samples=2)


# -------------------------------------------------------------------------------------- reinforce_pp
@objective(
    "reinforce_pp",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Hu 2025 (REINFORCE++), arXiv 2501.03262",
)
def reinforce_pp(
    batch: RolloutBatch,
    estimator: str = "reinforce_pp",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    whiten_std: str = "unbiased",
    loss_aggregation: str = "token_mean",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """REINFORCE++: critic-free PPO-clip with globally whitened advantages.

    ``estimator: reinforce_pp``: token rewards r_t = −β_r·k1_t + 1[t=T]·R (KL in the reward, ``online.kl``,
    default β_r = 0.01), return G_t = Σ_{s≥t} r_s, A = whiten(G) over every token of the rollout.
    ``estimator: reinforce_pp_baseline``: A = R_i − mean_group(R) tiled over tokens, then whitened; its KL
    usually goes in the loss (``kl_coef``, ``kl_estimator: k3``) with ``online.kl.coef: 0``.
    ``whiten_std``: ``unbiased`` (verl) or ``population`` (OpenRLHF) — METHODS disagreement 10.
    Checked: verl ``compute_reinforce_plus_plus_outcome_advantage`` / ``..._baseline_outcome_advantage``.
    """
    return _policy_gradient(
        batch,
        "ppo_clip",
        _clip_params(epsilon, epsilon_high),
        loss_aggregation,
        normalisers,
        kl_coef,
        kl_estimator,
    )


@rollout_plan("reinforce_pp")
def _reinforce_pp_plan(params: dict[str, Any]) -> RolloutPlan:
    name = params["estimator"]
    if name not in ("reinforce_pp", "reinforce_pp_baseline"):
        raise ValueError(
            f"reinforce_pp: estimator must be reinforce_pp or reinforce_pp_baseline, got '{name}'"
        )
    baseline = name == "reinforce_pp_baseline"
    return RolloutPlan(
        name,
        {"std": params["whiten_std"]},
        kl_coef=0.0 if baseline else 0.01,
        needs_reference=params["kl_coef"] > 0,
        min_samples=2 if baseline else 1,
    )


# --------------------------------------------------------------------------------------------- remax
@objective(
    "remax",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Li et al. 2023 (ReMax), arXiv 2310.10505",
)
def remax(
    batch: RolloutBatch, loss_aggregation: str = "seq_mean_token_sum", normalisers: Any = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """ReMax: REINFORCE with the greedy completion's reward as the baseline, A = r(x, y) − r(x, ȳ),
    loss −A·Σ_t log π_θ(a_t|s_t) (no critic, no clipping). The rollout source decodes ȳ greedily for every
    prompt and judges it. KL in the reward is optional (``online.kl``, default 0). Checked: paper Alg. 1;
    verl ``compute_remax_outcome_advantage``.
    """
    return _policy_gradient(batch, "reinforce", {}, loss_aggregation, normalisers)


@rollout_plan("remax")
def _remax_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("remax", greedy_baseline=True)


# ----------------------------------------------------------------------------------------------- ppo
@objective(
    "ppo",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=(*NEEDS, "token_values"),
    paper="Ouyang et al. 2022, arXiv 2203.02155; Ziegler et al. 2019, arXiv 1909.08593",
)
def ppo(
    batch: RolloutBatch,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    dual_clip: float | None = None,
    vf_coef: float = 0.1,
    cliprange_value: float = 0.2,
    gamma: float = 1.0,
    lam: float = 0.95,
    loss_aggregation: str = "token_mean",
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-RLHF: per-token KL in the reward (``online.kl``, default β = 0.05, k1), GAE advantages from a
    value head on the policy's hidden states (the rollout source attaches it to the policy, so it trains and
    is saved with it), token-level clipped policy loss + c_v × clipped value loss.

    r_t = −β·k1_t + 1[t=T]·R; δ_t = r_t + γV(s_{t+1}) − V(s_t); A_t = Σ_l (γλ)^l δ_{t+l}, whitened;
    G_t = A_t + V(s_t). L = L_clip + c_v·½·max((V − G)², (clip(V, V_old ± ε_v) − G)²). Defaults: TRL's
    experimental PPOConfig (ε = 0.2, ε_v = 0.2, vf_coef 0.1, γ = 1, λ = 0.95, kl_coef 0.05).
    Checked: TRL ``trl/experimental/ppo/ppo_trainer.py``; verl ``compute_gae_advantage_return``,
    ``compute_policy_loss_vanilla``, ``compute_value_loss``.
    """
    loss_params = {**_clip_params(epsilon, epsilon_high), "dual_clip": dual_clip}
    logps = batch.items.token_logps
    mask = batch.mask
    per_token, metrics = POLICY_LOSSES(
        "ppo_clip", logps, batch.get("old_logps"), batch.get("advantages"), mask, **loss_params
    )
    values = batch.items.extra.get("token_values")
    if values is None:
        raise ValueError("ppo needs the value head's per-token values (needs 'token_values')")
    value_loss, value_metrics = clipped_value_loss(
        values, batch.get("old_values"), batch.get("returns"), mask, clip=cliprange_value
    )
    metrics.update(value_metrics)
    metrics["value_loss"] = ((value_loss * mask).sum() / mask.sum().clamp(min=1)).detach()
    metrics.update(_token_metrics(batch))
    return aggregate(per_token + vf_coef * value_loss, batch, loss_aggregation, normalisers), metrics


@rollout_plan("ppo")
def _ppo_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan(
        "gae",
        {"gamma": params["gamma"], "lam": params["lam"]},
        kl_coef=0.05,
        kl_estimator="k1",
        needs_values=True,
    )
