"""DPO variants that offset, weight or rescale the pair's log-ratio margin (section B): odpo, madpo,
beta_dpo, bco_pair, copg, step_apo, dpo_3d_reg.

Margin-, reward- and advantage-based variants read the pair's rating gap from ``PairBatch.margin`` (built
from one named rating per completion, ``Record.scores``, or a given ``margin``). Variants that need extra
completions (selm, c3po, longpo) are in ``pairwise_extra_completions.py``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.pairwise import margin
from alignlab.objectives.registry import objective
from alignlab.objectives.state import StepStatistics
from alignlab.objectives.views import PairBatch


def rating_gap(batch: PairBatch, name: str, what: str) -> Tensor:
    """The pair's score gap s(y_w) − s(y_l), or a clear error when the data has none."""
    if batch.margin is None:
        raise ValueError(
            f"{name}: needs {what} for each pair; give every completion one rating (`scores: [{{reward: ..}}, ..]`) "
            "or a per-record `margin`"
        )
    return batch.margin.to(batch.chosen.logps.dtype)


@objective(
    "odpo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Amini et al. 2024, Direct Preference Optimization with an Offset, arXiv 2402.10571",
)
def odpo(batch: PairBatch, beta: float = 0.1, alpha: float = 1.0, offset: str = "log_diff") -> Tensor:
    """DPO with an offset: L = −log σ(β·h − Δ), Δ = α·log(s(y_w) − s(y_l)) (``offset="log_diff"``).

    Pairs whose scores differ more must be separated by a larger implicit-reward margin. ``offset="log_ratio"``
    uses Δ = α·log(s(y_w)/s(y_l)) (the code's `ratio` option). Scores come from the records' ratings; the gap
    must be positive (ratio: both scores positive). Defaults α = 1 (config/loss/odpo.yaml), β = 0.1.
    Checked: rycolab/odpo trainers.py `preference_loss` (offset branch: −logsigmoid(β·logits − α·log(margin))).
    """
    if offset == "log_diff":
        gap = rating_gap(batch, "odpo", "a score gap s(y_w) − s(y_l) > 0")
        if ((gap <= 0) & (batch.weight > 0)).any():
            raise ValueError(
                "odpo: every pair needs s(y_w) > s(y_l) for log(s_w − s_l); drop ties or use offset: none"
            )
        delta = alpha * torch.log(gap.clamp(min=1e-30))  # the clamp only touches zero-weight pairs
    elif offset == "log_ratio":
        ratings_w, ratings_l = batch.chosen.ratings, batch.rejected.ratings
        if (
            ratings_w is None
            or ratings_l is None
            or (ratings_w[..., 0] <= 0).any()
            or (ratings_l[..., 0] <= 0).any()
        ):
            raise ValueError("odpo: offset 'log_ratio' needs one positive rating per completion")
        delta = alpha * (torch.log(ratings_w[..., 0]) - torch.log(ratings_l[..., 0])).to(
            batch.chosen.logps.dtype
        )
    elif offset == "none":
        delta = torch.zeros_like(batch.chosen.logps)
    else:
        raise ValueError(f"odpo: offset must be 'log_diff', 'log_ratio' or 'none', got '{offset}'")
    return -F.logsigmoid(beta * margin(batch) - delta)


@objective(
    "madpo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Rho 2025, Margin Adaptive DPO: Leveraging Reward Model for Granular Control in Preference "
    "Optimization, arXiv 2510.05342",
)
def madpo(
    batch: PairBatch, beta: float = 0.1, kappa: float = 1.0, tau: float = 0.0, max_weight: float = 5.0
) -> Tensor:
    """Margin-adaptive DPO: L = −w(m̂)·log σ(β·h), m̂ = r̂(y_w) − r̂(y_l) from a reward model trained first.

    The paper (abstract and secondary summaries; the full text was not reachable) specifies a continuous,
    piecewise weight that amplifies hard pairs (small m̂), dampens easy ones (large m̂) and is capped for
    negative margins. Its exact w was not recovered; this uses the stand-in w(m̂) = min(max_weight,
    exp(−κ·(m̂ − τ))): positive, non-increasing, 1 at m̂ = τ, capped at ``max_weight``; κ = 0 is dpo.
    m̂ comes from one rating per completion (the reward model's scores). The weight is not differentiated.
    Checked: the loss form against the paper's objective as summarised (−w(h_φ)·log σ(β h_θ)); w is NOT verified.
    """
    gap = rating_gap(batch, "madpo", "a reward-model margin r̂(y_w) − r̂(y_l)")
    if max_weight <= 0:
        raise ValueError(f"madpo: max_weight must be > 0, got {max_weight}")
    weight = torch.exp(-kappa * (gap - tau)).clamp(max=max_weight).detach()
    return -weight * F.logsigmoid(beta * margin(batch))


def _beta_dpo_margins(batch: PairBatch) -> Tensor:
    """Every pair's margin M_i = h_i (one row per pair), gathered over the whole step by the loop."""
    return margin(batch).detach()[:, None]


def _beta_dpo_fold(
    state: dict[str, Any],
    rows: Tensor,
    beta: float = 0.1,
    alpha: float = 0.6,
    filter_ratio: float = 0.2,
    momentum: float = 0.9,
    seed: int = 0,
) -> Tensor:
    """Fold the step's N margins: running mean/std, the filter's draw and β_batch; returns each pair's
    loss multiplier (N/#kept if kept, else 0)."""
    _check_filter_ratio(filter_ratio)
    gap = rows[:, 0].double()
    size = gap.numel()
    batch_std = float(gap.std()) if size > 1 else 0.0
    m0 = momentum * float(state.get("gap_mean", 0.0)) + (1 - momentum) * float(gap.mean())
    sigma = momentum * float(state.get("gap_std", 0.0)) + (1 - momentum) * batch_std
    draws = int(state.get("draws", 0))
    keep = torch.ones(size, dtype=torch.bool)
    num_keep = int(size * (1 - filter_ratio))
    if filter_ratio > 0 and 0 < num_keep < size:
        weights = torch.exp(-0.5 * ((gap - m0) / max(sigma, 1e-12)) ** 2)
        if not torch.isfinite(weights).all() or weights.sum() <= 0:
            weights = torch.ones_like(gap)  # degenerate spread: draw uniformly
        # One draw per step, the same on every process and for every cut: a generator seeded by (seed, step).
        generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + draws) % 2**63)
        chosen = torch.multinomial(weights, num_keep, replacement=False, generator=generator)
        keep = torch.zeros_like(keep)
        keep[chosen] = True
    beta_batch = max(1e-3, beta * (1 + alpha * (float(gap[keep].mean()) - m0)))
    state.update(gap_mean=m0, gap_std=sigma, beta_batch=beta_batch, draws=draws + 1)
    state["kept_fraction"] = float(keep.sum()) / max(size, 1)
    return keep.double() * (size / max(int(keep.sum()), 1))


def _check_filter_ratio(filter_ratio: float) -> None:
    if not 0.0 <= filter_ratio < 1.0:
        raise ValueError(f"beta_dpo: filter_ratio must lie in [0, 1), got {filter_ratio}")


@objective(
    "beta_dpo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Wu et al. 2024, β-DPO: Direct Preference Optimization with Dynamic β, arXiv 2407.08639",
    step_statistics=StepStatistics(_beta_dpo_margins, _beta_dpo_fold, size=1, per_example=True),
)
def beta_dpo(
    batch: PairBatch,
    state: dict[str, Any],
    step_results: Tensor | None = None,
    beta: float = 0.1,
    alpha: float = 0.6,
    filter_ratio: float = 0.2,
    momentum: float = 0.9,
    seed: int = 0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """β-DPO: DPO with a batch-level β and β-guided filtering, both drawn from the step's global batch.

    M_i = h_i (detached), over all N pairs of the step (every micro-batch and process: per-example
    ``step_statistics``). Running statistics (EMA, momentum γ = 0.9, starting at 0), updated with the step
    first: M_0 ← γ·M_0 + (1−γ)·mean(M), σ ← γ·σ + (1−γ)·std(M) (unbiased std). Filtering: keep
    ⌊N·(1 − filter_ratio)⌋ pairs, drawn without replacement with probability ∝ exp(−½((M_i − M_0)/σ)²)
    (``torch.multinomial`` with a generator seeded by (``seed``, step), so every process and every cut
    draws the same pairs, and a resumed run the same as an uninterrupted one). Then
    β_batch = max(1e-3, β·(1 + α·(mean_{kept} M − M_0))) and L_i = −log σ(β_batch·h_i)·N/#kept on kept
    pairs, 0 on the others, so the step's mean is the masked mean over the kept pairs. α = 0 and
    filter_ratio = 0 give dpo. Evaluation moves nothing and filters nothing: every pair, with the last
    training step's β_batch (β before the first). Defaults α = 0.6, filter ratio 0.2 (README example;
    the yaml default is a = 0).
    Checked: junkangwu/beta-DPO trainers.py. `get_batch_metrics` all-gathers the margins of every
    process (`all_gather_if_needed`) before `update_and_sync_tensor_mean` (gamma=0.9, `.std()`) moves
    gap_mean/gap_std; `preference_loss` (mode_loss="beta_DPO") all-gathers them again, draws the mask
    with `torch.multinomial` over the gathered batch and computes β_used from the mean of the drawn
    margins: all three are global over processes. There each gradient-accumulation micro-batch is such a
    batch and each process normalises by its own kept count; here the batch is the step's, whatever the
    cut (equal with one micro-batch per step).
    """
    _check_filter_ratio(filter_ratio)
    h = margin(batch)
    if step_results is None:  # evaluation (or a loss without its step's fold): every pair
        scale = torch.ones_like(h)
        beta_batch = float(state.get("beta_batch", beta))
        kept = 1.0
    else:
        scale = step_results.reshape(-1).to(h)
        beta_batch, kept = float(state["beta_batch"]), float(state["kept_fraction"])
    loss = -F.logsigmoid(beta_batch * h) * scale
    return loss, {"beta_batch": torch.tensor(beta_batch), "kept_fraction": torch.tensor(kept)}


def _bco_pair_reward_sums(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """[Σ r, n] over the chosen and rejected rewards r = β·ρ of a batch's pairs."""
    rewards = beta * torch.cat([batch.chosen.logratios, batch.rejected.logratios]).detach().double()
    return torch.stack([rewards.sum(), torch.tensor(float(rewards.numel()), dtype=torch.float64)])


def _bco_pair_fold(state: dict[str, Any], sums: list[float], reward_shift: bool = True) -> None:
    """δ ← running mean of the steps' batch means: δ += (mean_step − δ) / steps."""
    total, n = sums
    if reward_shift and n > 0:
        count = state.get("count", 0) + 1
        state["mean"] = state.get("mean", 0.0) + (total / n - state.get("mean", 0.0)) / count
        state["count"] = count


@objective(
    "bco_pair",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Jung et al. 2024, Binary Classifier Optimization for Large Language Model Alignment, arXiv 2404.04656",
    step_statistics=StepStatistics(_bco_pair_reward_sums, _bco_pair_fold, size=2),
)
def bco_pair(batch: PairBatch, state: dict[str, Any], beta: float = 0.1, reward_shift: bool = True) -> Tensor:
    """BCO on pairs: L = −log σ(β·ρ_w − δ) − log σ(−(β·ρ_l − δ)).

    Chosen is a thumbs-up, rejected a thumbs-down, for a binary classifier whose logit is the implicit
    reward β·ρ. δ (the paper's reward shift) is the running mean of the batch means of all β·ρ (chosen and
    rejected), detached, updated with the current batch before use, where a batch is the whole step's global
    batch (``step_statistics``: δ does not depend on micro-batches or processes; evaluation never moves
    it). ``reward_shift=False`` uses δ = 0 (TRL's current `bco_pair`).
    Checked: huggingface/trl trl/trainer/dpo_trainer.py at the commit before c050ebc (`bco_pair` with
    `self.running.update(rewards)`, RunningMoments.update in trl/trainer/utils.py); current TRL drops δ.
    """
    chosen, rejected = beta * batch.chosen.logratios, beta * batch.rejected.logratios
    delta = torch.zeros((), dtype=chosen.dtype)
    if reward_shift:
        delta = torch.tensor(float(state.get("mean", 0.0)), dtype=chosen.dtype)
    return -F.logsigmoid(chosen - delta) - F.logsigmoid(-(rejected - delta))


@objective(
    "copg",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Flet-Berliac et al. 2024, Contrastive Policy Gradient: Aligning LLMs on sequence-level scores in a "
    "supervised-friendly fashion, arXiv 2406.19185",
)
def copg(batch: PairBatch, beta: float = 0.1) -> Tensor:
    """Contrastive Policy Gradient: L = −(r_1 − r_2)·(log π_θ(y_1) − log π_θ(y_2)) + (β/2)·(ρ(y_1) − ρ(y_2))².

    For (possibly off-policy) pairs with arbitrary scalar rewards r (one rating per completion). Its gradient
    is −(r_1 − r_2 − β(ρ_1 − ρ_2))·∇(log π_θ(y_1) − log π_θ(y_2)), i.e. the pairwise policy gradient of the
    KL-regularised reward R_β = r − β·ρ with the other response as baseline; the stationary point is
    ρ(y_1) − ρ(y_2) = (r_1 − r_2)/β, the optimum π_ref·exp(r/β)/Z. Which response is "chosen" does not matter.
    Unverified: formula recalled from the paper (no official code found with the search tools); METHODS.md's
    stop-gradient form has the same gradient direction at half the magnitude.
    """
    reward_gap = rating_gap(batch, "copg", "scalar rewards r(x, y) of both responses")
    d = margin(batch)
    return -reward_gap * (batch.chosen.logps - batch.rejected.logps) + 0.5 * beta * d**2


@objective(
    "step_apo",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Wang et al. 2024, CPL: Critical Plan Step Learning Boosts LLM Generalization in Reasoning Tasks "
    "(Step-APO), arXiv 2409.08642",
)
def step_apo(batch: PairBatch, beta: float = 0.1, advantage_scale: float = 1.0) -> Tensor:
    """Step-level advantage preference optimization: L = −log σ(β·h − γ·(A(s_w) − A(s_l))).

    Each pair is two candidate plan steps after the same prefix (the prefix is the prompt), with MCTS
    advantage estimates A as their ratings; the advantage gap, scaled by γ = ``advantage_scale``, acts as
    an offset so pairs with a larger advantage gap must be separated more. Equal advantages give
    step-level dpo. Unverified: the paper's exact use of the advantage was not recovered (abstract only);
    this follows METHODS.md's offset reading.
    """
    gap = rating_gap(batch, "step_apo", "MCTS advantage estimates of both steps")
    return -F.logsigmoid(beta * margin(batch) - advantage_scale * gap)


@objective(
    "dpo_3d_reg",
    family="pairwise",
    feedback="pairs",
    needs=("reference",),
    paper="Yan et al. 2024, 3D-Properties: Identifying Challenges in DPO and Charting a Path Forward, "
    "arXiv 2406.07327",
)
def dpo_3d_reg(
    batch: PairBatch, beta_chosen: float = 0.1, beta_rejected: float = 0.1, sft_weight: float = 0.0
) -> Tensor:
    """DPO regularised against the 3D-properties: L = −log σ(β_w·ρ_w − β_l·ρ_l) + c·NLL(y_w).

    Separate β for the chosen and rejected terms (a smaller β_l slows the drastic drop of the rejected
    likelihood) and an optional SFT term c·NLL(y_w) (token-mean) against degradation of the chosen one.
    β_w = β_l and c = 0 give dpo. Unverified: regularisers as summarised in METHODS.md (abstract only).
    """
    z = beta_chosen * batch.chosen.logratios - beta_rejected * batch.rejected.logratios
    return -F.logsigmoid(z) - sft_weight * batch.chosen.mean_logps
