"""Family H methods that learn from comparisons inside a prompt's group of rollouts: p3o, drpo, trpa.

Each is an online objective (``feedback="rollouts"``): the rollout source samples K completions per prompt,
judges them and stores the sampling policy's log-probs; these objectives read the judge's raw rewards
(``rollout["rewards"]``) or the leave-one-out advantages, compare completions of the same prompt, and
return this micro-batch's share of the step's loss. The source serves whole prompt groups, so every
comparison is inside one micro-batch; the mean over prompts uses the step's global sequence count
(``normalisers.groups``), so the loss does not depend on how the step is cut. The math lives in
``p3o.py``, ``drpo.py`` and ``trpa.py`` (docstrings with the formulas, papers and the code checked).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.drpo import drpo_group_objective, drpo_kl_sums, drpo_trust_region
from alignlab.objectives.loss_aggregation import AGGREGATIONS
from alignlab.objectives.p3o import P3O_VARIANTS
from alignlab.objectives.policy_losses import POLICY_LOSSES
from alignlab.objectives.registry import objective
from alignlab.objectives.rollouts import RolloutPlan, rollout_plan
from alignlab.objectives.state import StepStatistics
from alignlab.objectives.trpa import trpa_loss_from_rewards, trust_region_kl
from alignlab.objectives.views import RolloutBatch

NEEDS = ("token_logps", "token_entropy_metric")  # the entropy is only logged: no gradient


def _groups(batch: RolloutBatch, name: str, size: int | None = None) -> tuple[list[Tensor], int]:
    """Row indices of each prompt group in this micro-batch, and the common group size K."""
    rows = [torch.nonzero(batch.group_index == g).flatten() for g in torch.unique(batch.group_index)]
    sizes = {len(r) for r in rows}
    if len(sizes) > 1:
        raise ValueError(
            f"{name}: every prompt needs the same number of completions, got sizes {sorted(sizes)}"
        )
    k = sizes.pop() if sizes else 1
    if size is not None and k != size:
        raise ValueError(
            f"{name}: compares exactly {size} completions per prompt, got {k}; set online.sampling.n: {size}"
        )
    return rows, k


def _prompt_share(normalisers: Any, local_prompts: int) -> float:
    """1 / (number of prompts in the whole step, ``normalisers.groups``): the weight of one prompt's term."""
    prompts = local_prompts if normalisers is None else float(normalisers.groups)
    return 1.0 / max(prompts, 1.0)


def _token_share(batch: RolloutBatch, normalisers: Any) -> float:
    """This micro-batch's share of the step's real tokens (1 when it is the whole step)."""
    if normalisers is None:
        return 1.0
    return float(batch.mask.sum()) / max(float(normalisers.tokens), 1.0)


def _sequence_logps(batch: RolloutBatch) -> tuple[Tensor, Tensor, Tensor]:
    mask = batch.mask.to(batch.items.token_logps.dtype)
    logps = (batch.items.token_logps * mask).sum(-1)
    old = (batch.get("old_logps") * mask).sum(-1)
    return logps, old, mask


# ----------------------------------------------------------------------------------------------- p3o
@objective(
    "p3o",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Wu et al. 2023, Pairwise Proximal Policy Optimization, arXiv 2310.00212",
)
def p3o(
    batch: RolloutBatch, variant: str = "separate", epsilon: float = 0.2, normalisers: Any = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Pairwise PPO on two samples per prompt: Δ = R_1 − R_2 with R = r − β·Σ_t(log π_old − log π_ref)
    (``online.kl``, KL in the reward at sequence level, default β = 0.05 as RLOO), sequence ratios
    ρ_j = π_θ(y_j)/π_old(y_j).

    ``separate`` (P3O-V1): −½[min(ρ_1Δ, clip(ρ_1)Δ) + min(−ρ_2Δ, −clip(ρ_2)Δ)] — exactly RLOO's K = 2
    leave-one-out advantages (A_1 = Δ = −A_2) with the sequence-level clip, averaged over the pair (a test
    shows the equality). ``joint`` (P3O-V2): −½·min(ρΔ, clip(ρ, 1 ± ε)Δ) with ρ = ρ_1/ρ_2. Only reward
    differences enter, so r → r + c(x) changes nothing. Mean over prompts. Needs ``online.sampling.n: 2``.
    Unverified clipping forms (no official code found; see ``p3o.py``).
    """
    if variant not in P3O_VARIANTS:
        raise ValueError(f"p3o: variant must be one of {P3O_VARIANTS}, got '{variant}'")
    rows, k = _groups(batch, "p3o", size=2)
    share = _prompt_share(normalisers, len(rows))
    advantages = batch.get("advantages")[:, 0]  # RLOO with K = 2: A_1 = R_1 − R_2, A_2 = −A_1
    if variant == "separate":
        per_token, metrics = POLICY_LOSSES(
            "sequence_clip", batch.items.token_logps, batch.get("old_logps"), advantages, batch.mask,
            epsilon=float(epsilon),
        )  # fmt: skip
        # the mean over the pair, then over the step's prompts = the mean over the step's sequences
        return AGGREGATIONS("seq_mean_token_mean", per_token, batch.mask, normalisers), metrics
    logps, old, _ = _sequence_logps(batch)
    first = torch.stack([r[0] for r in rows])
    second = torch.stack([r[1] for r in rows])
    delta = advantages[first].detach()
    ratio = torch.exp((logps[first] - old[first]) - (logps[second] - old[second]))
    clipped = ratio.clamp(1 - epsilon, 1 + epsilon)
    per_pair = -0.5 * torch.minimum(ratio * delta, clipped * delta)
    metrics = {"clip_fraction": ((ratio - clipped).abs() > 0).to(ratio.dtype).mean().detach()}
    return per_pair.sum() * share, metrics


@rollout_plan("p3o")
def _p3o_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("rloo", kl_coef=0.05, min_samples=2)


# ---------------------------------------------------------------------------------------------- drpo
def _drpo_kl_sums(batch: RolloutBatch) -> Tensor:
    """[Σ k3 over real tokens, real tokens] of a batch (the step's KL to π_old, for the coefficient)."""
    return torch.stack(drpo_kl_sums(batch.items.token_logps, batch.get("old_logps"), batch.mask))


def _drpo_fold_kl(state: dict[str, Any], sums: list[float]) -> None:
    total, tokens = sums
    state["kl"] = total / max(tokens, 1.0)


@objective(
    "drpo",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Li et al. 2025, DRPO: Efficient Reasoning via Decoupled Reward Policy Optimization, arXiv 2510.04474",
    step_statistics=StepStatistics(_drpo_kl_sums, _drpo_fold_kl, size=2),
)
def drpo(
    batch: RolloutBatch,
    state: dict[str, Any] | None = None,
    tau: float = 10.0,
    lam: float = 0.1,
    beta: float = 1e3,
    delta: float = 1e-4,
    correct_at: float = 1.0,
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Decoupled Reward Policy Optimization on a verifiable reward: a completion is correct when the judge's
    reward ≥ ``correct_at``. Per prompt with both kinds, J = Σ_P w_i s_i/Σ_P w_i − τ·log Σ_N e^{s_j/τ}
    (s = mean token log-prob, w = exp((1 − |y|/L)/λ), L = max_new_tokens); loss = −mean_prompts J plus the
    trust region sg(max(β(KL − δ), 0))·KL to π_old (KL the k3 token mean). Defaults are the official
    scripts' (τ 10, λ 0.1, β 1e3, δ 1e-4); formula, checks and the one deviation in ``drpo.py``. The
    trust-region coefficient sg(max(β(KL̄ − δ), 0)) takes KL̄ over the whole step's tokens (additive
    ``step_statistics`` folded before the loss), so the loss does not depend on how the step is cut; the
    official code takes it per micro-batch (the same with one micro-batch per step). Evaluation, and a
    call without the loop, use the batch's own KL.
    """
    rows, k = _groups(batch, "drpo")
    share = _prompt_share(normalisers, len(rows))
    correct = (batch.get("rewards") >= correct_at).to(batch.items.token_logps.dtype)
    max_length = int(batch.get("length_norm")[0]) if batch.size else 1
    total, valid, _ = drpo_group_objective(
        batch.items.token_logps, batch.mask, batch.group_index, correct, max_length, tau=tau, lam=lam
    )
    # the trust region is a token mean: this micro-batch's share of the step's tokens
    step_kl = state.get("kl") if state is not None and getattr(state, "training", True) else None
    penalty, kl = drpo_trust_region(
        batch.items.token_logps, batch.get("old_logps"), batch.mask, beta, delta, step_kl
    )
    loss = -total * share + penalty * _token_share(batch, normalisers)
    metrics = {"correct_rate": correct.mean().detach(), "drpo_kl": kl.detach(), "drpo_prompts": float(valid)}
    return loss, {k: torch.as_tensor(v) for k, v in metrics.items()}


@rollout_plan("drpo")
def _drpo_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("grpo", min_samples=2)


# ---------------------------------------------------------------------------------------------- trpa
@objective(
    "trpa",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=NEEDS,
    paper="Su et al. 2025, Trust Region Preference Approximation, arXiv 2504.04524",
)
def trpa(
    batch: RolloutBatch,
    beta: float = 0.1,
    anisotropy: float = 2.5,
    top_reward: float = 1.0,
    trust_region_coef: float = 1e-3,
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Trust Region Preference Approximation: the judge's rule-based reward orders the K completions of a
    prompt into levels (a higher reward is a better level); every pair of different levels is a preference
    pair, −log σ(a·β·(ℓ_w − ℓ_l)) with ℓ = mean-token log π_θ − mean-token log π_ref and a = ``anisotropy``
    when the winner's reward ≥ ``top_reward`` (a correct answer); plus ``trust_region_coef``·KL(π_old‖π_θ)
    (k3 token mean). Defaults are the official script's (β 0.1, a 2.5, tr_kl 1e-3).
    Per prompt the mean over its pairs, then the mean over prompts (the official code takes one mean over
    all pairs of a micro-batch, which depends on how the batch is cut; the two agree when every prompt has
    as many pairs). A prompt whose completions all share one level adds nothing (the official fallback
    applies only to a micro-batch without any pair). Formula and checks in ``trpa.py``.
    """
    rows, k = _groups(batch, "trpa")
    share = _prompt_share(normalisers, len(rows))
    mask = batch.mask.to(batch.items.token_logps.dtype)
    lengths = mask.sum(-1).clamp(min=1)
    mean_logps = (batch.items.token_logps * mask).sum(-1) / lengths
    ref_mean = (batch.get("ref_logps") * mask).sum(-1) / lengths
    rewards = batch.get("rewards")
    total = mean_logps.new_zeros(())
    with_pairs = 0
    for r in rows:
        one = torch.zeros(len(r), dtype=torch.long)
        term = trpa_loss_from_rewards(
            mean_logps[r], ref_mean[r], rewards[r], one, beta, anisotropy, top_reward
        )
        if term is not None:
            total, with_pairs = total + term, with_pairs + 1
    region = trust_region_kl(batch.items.token_logps, batch.get("old_logps"), batch.mask, trust_region_coef)
    metrics = {"prompts_with_pairs": torch.tensor(float(with_pairs))}
    return total * share + region * _token_share(batch, normalisers), metrics


@rollout_plan("trpa")
def _trpa_plan(params: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan("grpo", needs_reference=True, min_samples=2)
