"""Reward-model objectives on pairs: Bradley–Terry and its options, Eurus's absolute term, GPM.

Each receives a :class:`PairBatch` whose ``chosen.rewards`` / ``rejected.rewards`` are reward-head outputs
(``[P]`` for a scalar reward, ``[P, d]`` for GPM's preference embedding). Notation: r_w = r(x, y_w),
r_l = r(x, y_l), Δ = r_w − r_l, σ the logistic function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.objectives.metrics import pair_reward_metrics
from alignlab.objectives.registry import objective
from alignlab.objectives.views import PairBatch
from alignlab.scoring.gpm import gpm_score

BT_PAPER = "Stiennon et al. 2020 (arXiv 2009.01325); Ouyang et al. 2022 InstructGPT (arXiv 2203.02155)"


def scalar_rewards(batch: PairBatch, name: str) -> tuple[Tensor, Tensor]:
    """(r_w, r_l) as [P] tensors, or a clear error if the model does not give one reward per completion."""
    rw, rl = batch.chosen.rewards, batch.rejected.rewards
    if rw is None or rl is None:
        raise ValueError(
            f"{name}: needs reward-head outputs; train a reward model (model.kind: reward_model)"
        )
    if rw.dim() == 2 and rw.shape[-1] == 1:
        rw, rl = rw[:, 0], rl[:, 0]
    if rw.dim() != 1:
        raise ValueError(
            f"{name}: needs one reward per completion but the model has {rw.shape[-1]} outputs; "
            "set model.num_attributes: 1 (or use armorm/gpm for multi-output heads)"
        )
    return rw, rl


def reward_metrics(rw: Tensor, rl: Tensor) -> dict[str, Tensor]:
    """The batch means of :func:`~alignlab.objectives.metrics.pair_reward_metrics` (no log-probs)."""
    return {name: value.mean() for name, value in pair_reward_metrics(rw, rl).items()}


def bt_loss(
    rw: Tensor,
    rl: Tensor,
    margin: Tensor | None = None,
    center_coef: float = 0.0,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Per-pair −(1−ε)·log σ(Δ − m) − ε·log σ(−(Δ − m)) + η·(r_w + r_l)²."""
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if center_coef < 0:
        raise ValueError(f"center_coef must be >= 0, got {center_coef}")
    z = rw - rl
    if margin is not None:
        z = z - margin.to(z.dtype)
    loss = -(1.0 - label_smoothing) * F.logsigmoid(z)
    if label_smoothing > 0:
        loss = loss - label_smoothing * F.logsigmoid(-z)
    if center_coef > 0:
        loss = loss + center_coef * (rw + rl) ** 2
    return loss


def _margin(batch: PairBatch, use_margin: bool, name: str) -> Tensor | None:
    if not use_margin:
        return None
    if batch.margin is None or torch.isnan(batch.margin).any():
        raise ValueError(
            f"{name}: use_margin needs a margin for every pair: put it in each record's meta.margin "
            "(or give one named rating per completion, whose gap is used)"
        )
    return batch.margin


@objective("bt", family="reward_model", feedback="rewards", needs=("rewards",), paper=BT_PAPER)
def bt(
    batch: PairBatch, use_margin: bool = False, center_coef: float = 0.0, label_smoothing: float = 0.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """Bradley–Terry reward model: L = −log σ(r_w − r_l), with its common options.

    ``use_margin``: L = −log σ(r_w − r_l − m) with the pair's margin m (Llama 2, `bt_margin`).
    ``center_coef`` η: + η·(r_w + r_l)² (Eisenstein et al. 2023, `bt_center`; TRL's
    ``center_rewards_coefficient``, recommended 0.01). ``label_smoothing`` ε: −(1−ε) log σ(Δ) − ε log σ(−Δ)
    (Secrets of RLHF II, `bt_label_smoothing`). Batch mean over pairs.
    Checked: huggingface/trl trl/trainer/reward_trainer.py RewardTrainer.compute_loss
    (−logsigmoid(r_c − r_r − margin) + center_rewards_coefficient·mean((r_c + r_r)²)).
    """
    rw, rl = scalar_rewards(batch, "bt")
    loss = bt_loss(rw, rl, _margin(batch, use_margin, "bt"), center_coef, label_smoothing)
    return loss, reward_metrics(rw, rl)


@objective(
    "bt_margin",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    paper="Touvron et al. 2023 Llama 2 (arXiv 2307.09288), margin loss",
)
def bt_margin(batch: PairBatch, margin_scale: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """BT with a margin: L = −log σ(r_w − r_l − s·m(x, y_w, y_l)); ``bt`` with use_margin: true when s = 1.

    m comes from each record's ``meta.margin`` (Llama 2 uses discrete margins by rating gap), or the
    gap between the two completions' single named rating.
    Checked: huggingface/trl reward_trainer.py (−logsigmoid(r_c − r_r − margin) when `margin` is present).
    """
    rw, rl = scalar_rewards(batch, "bt_margin")
    margin = _margin(batch, True, "bt_margin") * margin_scale
    return bt_loss(rw, rl, margin), reward_metrics(rw, rl)


@objective(
    "bt_center",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    paper="Eisenstein et al. 2023 'Helping or Herding?' (arXiv 2312.09244), Eq. 2",
)
def bt_center(batch: PairBatch, center_coef: float = 0.01) -> tuple[Tensor, dict[str, Tensor]]:
    """BT + reward centring: L = −log σ(r_w − r_l) + η·(r_w + r_l)², η = 0.01 by default.

    Pins the mean reward near 0 without changing which completion is preferred, so rewards of
    different models (an ensemble's members) are comparable.
    Checked: huggingface/trl reward_trainer.py + reward_config.py (`center_rewards_coefficient`).
    """
    rw, rl = scalar_rewards(batch, "bt_center")
    return bt_loss(rw, rl, center_coef=center_coef), reward_metrics(rw, rl)


@objective(
    "bt_label_smoothing",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    paper="Wang et al. 2024 'Secrets of RLHF in LLMs Part II: Reward Modeling' (arXiv 2401.06080)",
)
def bt_label_smoothing(batch: PairBatch, epsilon: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """Label-smoothed BT: L = −(1−ε)·log σ(r_w − r_l) − ε·log σ(r_l − r_w).

    Its per-pair minimiser is finite: r_w − r_l = log((1−ε)/ε) (2.197 for ε = 0.1), so noisy labels
    cannot push rewards apart without bound.
    Checked against the METHODS block (paper recall; the paper's code was not available to read).
    """
    rw, rl = scalar_rewards(batch, "bt_label_smoothing")
    return bt_loss(rw, rl, label_smoothing=epsilon), reward_metrics(rw, rl)


@objective(
    "tree_rm",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    paper="Qiu et al. 2024 'Reward Generalization in RLHF: A Topological Perspective' (arXiv 2402.10184)",
)
def tree_rm(batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """Tree-structured preference RM: the BT loss −log σ(r_w − r_l) on pairs whose responses share prefixes.

    The paper's contribution is the data topology (responses sampled as a tree, comparisons between
    leaves), not a new loss; build such pairs with a tree sampler and train with this name (= ``bt``).
    Checked against the METHODS block (abstract only).
    """
    rw, rl = scalar_rewards(batch, "tree_rm")
    return bt_loss(rw, rl), reward_metrics(rw, rl)


@objective(
    "eurus_rm",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    paper="Yuan et al. 2024 Eurus 'Advancing LLM Reasoning Generalists with Preference Trees' (arXiv 2404.02078)",
)
def eurus_rm(batch: PairBatch, dr_weight: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Eurus RM: L = L_BT + w·L_DR, L_BT = −log σ(r_w − r_l), L_DR = −log σ(r_w) − log σ(−r_l).

    The direct-reward term pushes chosen rewards above 0 and rejected below 0 in absolute terms, not only
    their difference (the paper: relative BT alone lets rewards of correct reasoning drift negative).
    At r_w = r_l = 0 the loss is 3·log 2. Paper weights 1:1.
    Checked against the METHODS block and the paper's §4 description (no official loss code found).
    """
    rw, rl = scalar_rewards(batch, "eurus_rm")
    loss = bt_loss(rw, rl) + dr_weight * (-F.logsigmoid(rw) - F.logsigmoid(-rl))
    return loss, reward_metrics(rw, rl)


@objective(
    "gpm",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    paper="Zhang et al. 2024 'General Preference Modeling with Preference Representations' (arXiv 2410.02197)",
)
def gpm(batch: PairBatch, tau: float = 1.0, normalize: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """General preference model: L = −log σ(s(y_w ≻ y_l)/τ), s = v_wᵀ Rᵀ v_l with R skew-symmetric.

    The reward head outputs the preference embedding v ∈ R^d (model.num_attributes = d, even). Because
    s is antisymmetric and not a difference of scores, cyclic (intransitive) preferences are
    representable: with d = 2, v = (cos θ, sin θ) at θ = 0, 2π/3, 4π/3 gives s > 0 around the cycle.
    λ_k ≡ 1 (no prompt gate). ``normalize``: L2-normalise v first (the paper's text; the checked code
    snapshot leaves it off, so off is the default).
    Checked: general-preference/general-preference-model general_preference/models/loss.py
    (GeneralPreferenceLoss, create_skew_symmetric_block_matrix with R[i, i+1] = −1, R[i+1, i] = +1).
    """
    vw, vl = batch.chosen.rewards, batch.rejected.rewards
    if vw is None or vw.dim() != 2 or vw.shape[-1] % 2:
        got = "none" if vw is None else tuple(vw.shape)
        raise ValueError(
            f"gpm: needs an even-sized preference embedding per completion (model.num_attributes: 2), got {got}"
        )
    if normalize:
        vw, vl = F.normalize(vw, dim=-1), F.normalize(vl, dim=-1)
    s = gpm_score(vw, vl) / tau
    with torch.no_grad():
        metrics = {"rewards/accuracies": (s > 0).float().mean(), "rewards/margins": s.mean()}
    return -F.logsigmoid(s), metrics
