"""Pointwise / unpaired objectives on good-bad labels (METHODS.md section D): KTO, APO-zero unpaired, BCO, D2O.

Each receives a :class:`PointBatch`: one row per labelled completion (``labels`` 1 = desirable, 0 =
undesirable). Auxiliary completions arrive in ``batch.aux[role]`` (``[N, M]`` with ``aux_mask``):
KTO's mismatched completion (role ``"kl"``, added by :func:`kto_prepare`) and D2O's self-generated
samples (role ``"sample"``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.data.records import Record, RecordError, with_aux_completion
from alignlab.objectives.callbacks import Callback
from alignlab.objectives.registry import objective
from alignlab.objectives.state import StepStatistics
from alignlab.objectives.views import PointBatch

KL_ROLE = "kl"
SAMPLE_ROLE = "sample"


# ----------------------------------------------------------------------------------------------- helpers
def _labels(batch: PointBatch, name: str) -> Tensor:
    if batch.labels is None:
        raise ValueError(f"{name}: needs good/bad labels per completion (Record.labels)")
    return batch.labels.to(batch.items.logps.dtype)


def label_metrics(batch: PointBatch, rewards: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """TRL's KTO/BCO metric names: the mean reward and log-prob of desirable and undesirable rows."""
    good, bad = labels > 0.5, labels <= 0.5
    out: dict[str, Tensor] = {}
    r, lp = rewards.detach(), batch.items.logps.detach()
    if bool(good.any()):
        out["rewards/chosen"], out["logps/chosen"] = r[good].mean(), lp[good].mean()
    if bool(bad.any()):
        out["rewards/rejected"], out["logps/rejected"] = r[bad].mean(), lp[bad].mean()
    if bool(good.any()) and bool(bad.any()):
        out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
    return out


def _role_completions(record: Record) -> tuple[list[str], list[int]]:
    roles = record.completion_roles
    return roles, [i for i, role in enumerate(roles) if role == ""]


def kto_prepare(records: list[Record], use_kl: bool = True) -> list[Record]:
    """Give each record one mismatched completion (role "kl") for KTO's reference point z0.

    Record i receives the first scored completion of record i-1 (cyclically), the same rotation by one
    that TRL applies within each batch (kto_trainer.py ``add_kl_completion_ids``): the mismatched outputs
    are the same set as the matched ones, paired with other prompts. Records that already carry a "kl"
    completion are left as they are. Deterministic; needs at least two records.
    """
    if not use_kl:
        return list(records)
    if len(records) < 2:
        raise RecordError(
            "KTO needs at least two records to pair a prompt with another record's completion",
            "kto prepare",
            "add records, or set use_kl: false",
        )
    out = []
    for i, record in enumerate(records):
        roles, _ = _role_completions(record)
        if KL_ROLE in roles:
            out.append(record)
            continue
        source = records[i - 1]
        _, scored = _role_completions(source)
        if not scored:
            raise RecordError(f"record {i - 1} has no scored completion to lend to record {i}", "kto prepare")
        out.append(with_aux_completion(record, source.completions[scored[0]], KL_ROLE))
    return out


def kto_reference_point(batch: PointBatch) -> Tensor:
    """z0 = max(0, mean over the batch's mismatched completions of log π(y'|x) - log π_ref(y'|x)), detached.

    Rows of one record share its "kl" completion, so each record's completions are counted once.
    """
    total, count = kto_kl_sums(batch)
    return (total / count.clamp(min=1)).clamp(min=0)


def kto_kl_sums(batch: PointBatch, use_kl: bool = True) -> Tensor:
    """[Σ log π(y'|x) − log π_ref(y'|x), count] over the batch's mismatched completions (each record's once,
    detached); zeros with ``use_kl`` false."""
    if not use_kl:
        return torch.zeros(2, dtype=torch.float64)
    if KL_ROLE not in batch.aux:
        raise ValueError(
            "kto: no mismatched completion (role 'kl') in this batch; KTO's prepare hook adds one per record "
            "(objectives.pointwise.kto_prepare) — run data through it, or set use_kl: false"
        )
    aux, mask = batch.aux[KL_ROLE], batch.aux_mask[KL_ROLE]
    groups = batch.group_index if batch.group_index is not None else torch.arange(mask.shape[0])
    first = torch.ones_like(groups, dtype=torch.bool)
    seen: set[int] = set()
    for row, g in enumerate(groups.tolist()):
        first[row] = g not in seen
        seen.add(g)
    use = mask & first.unsqueeze(1)
    ratios = aux.logratios.detach()
    total = torch.where(use, ratios, torch.zeros_like(ratios)).sum()
    return torch.stack([total.double(), use.sum().double()])


def _kto_fold_reference_point(state: dict[str, Any], sums: list[float]) -> None:
    total, count = sums
    state["z0"] = max(0.0, total / max(count, 1.0))


# ------------------------------------------------------------------------------------------------ losses
@objective(
    "kto",
    family="pointwise",
    feedback="labels",
    needs=("reference",),
    prepare=kto_prepare,
    paper="Ethayarajh et al. 2024, KTO: Model Alignment as Prospect Theoretic Optimization, arXiv 2402.01306",
    step_statistics=StepStatistics(kto_kl_sums, _kto_fold_reference_point, size=2),
)
def kto(
    batch: PointBatch,
    state: dict[str, Any] | None = None,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    use_kl: bool = True,
) -> tuple[Tensor, dict[str, Tensor]]:
    """KTO: desirable λ_D·(1 - σ(β(ρ(y) - z0))), undesirable λ_U·(1 - σ(β(z0 - ρ(y)))), ρ = log π - log π_ref.

    z0 = max(0, mean ρ(y') over mismatched (x, y') pairs), detached (see :func:`kto_reference_point`;
    ``use_kl: false`` sets z0 = 0), over the step's global batch: its sums are additive ``step_statistics``
    folded before the loss, so z0 and the loss do not depend on how the step is cut (TRL takes the mean over
    each micro-batch, gathered across processes: the same with one micro-batch per step). Evaluation, and a
    call without the loop, use the batch's own z0. Record layout: labelled completions plus one completion with role "kl"
    from another record, which the ``prepare`` hook adds. Imbalanced data: choose the weights so that
    λ_D·n_D / (λ_U·n_U) ∈ [1, 4/3] (paper Eq. 8; TRL warns outside that range), e.g. with 1 desirable for
    every 10 undesirable, λ_U = 1 and λ_D ∈ [10, 13.3]. The loss is bounded in [0, λ]; at ρ = 0, z0 = 0
    it is λ/2. Checked: huggingface/trl trl/trainer/kto_trainer.py (_compute_loss, add_kl_completion_ids,
    weight-range warning); ContextualAI/HALOs train/trainers.py KTOTrainer.loss, config/loss/kto.yaml
    (HALOs averages only non-empty KL sequences; identical here since every row has one).
    """
    labels = _labels(batch, "kto")
    rho = batch.items.logratios
    if not use_kl:
        z0 = torch.zeros((), dtype=rho.dtype)
    elif state is not None and getattr(state, "training", True) and "z0" in state:
        z0 = torch.tensor(float(state["z0"]), dtype=rho.dtype)  # the step's, folded before the loss
    else:
        z0 = kto_reference_point(batch)
    desirable = desirable_weight * (1 - torch.sigmoid(beta * (rho - z0)))
    undesirable = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - rho)))
    loss = torch.where(labels > 0.5, desirable, undesirable)
    metrics = label_metrics(batch, beta * rho, labels)
    metrics["kl"] = z0.detach()
    return loss, metrics


@objective(
    "apo_zero_unpaired",
    family="pointwise",
    feedback="labels",
    needs=("reference",),
    paper="D'Oosterlinck et al. 2024, Anchored Preference Optimization (APO), arXiv 2408.06266",
)
def apo_zero_unpaired(
    batch: PointBatch, beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """APO-zero on unpaired labels: desirable λ_D·(1 - σ(βρ(y))), undesirable λ_U·σ(βρ(y)).

    KTO without its reference point: good completions are pushed up, bad ones down, each anchored at
    ρ = 0. At ρ = 0 every example's loss is λ/2; a desirable and an undesirable completion of one prompt
    sum to the paired ``apo_zero`` loss. Checked: huggingface/trl trl/trainer/kto_trainer.py
    (``loss_type="apo_zero_unpaired"``).
    """
    labels = _labels(batch, "apo_zero_unpaired")
    rho = batch.items.logratios
    loss = torch.where(
        labels > 0.5,
        desirable_weight * (1 - torch.sigmoid(beta * rho)),
        undesirable_weight * torch.sigmoid(beta * rho),
    )
    return loss, label_metrics(batch, beta * rho, labels)


def udm_weight(
    prob_desirable: Tensor, min_density_ratio: float = 0.5, max_density_ratio: float = 10.0
) -> Tensor:
    """BCO's underlying-distribution-matching weight clip(p/(1-p), min, max) for an undesirable prompt.

    ``p`` = P(prompt comes from the desirable set) from a classifier on prompt embeddings. Checked: trl
    trl/experimental/bco/bco_trainer.py ``_get_udm_weight``.
    """
    return (prob_desirable / (1 - prob_desirable + 1e-8)).clamp(min=min_density_ratio, max=max_density_ratio)


def bco_callback(params: dict[str, Any]) -> Callback | None:
    """With ``udm_encoder`` set, BCO's UDM classifier is fitted on the training records and attaches
    P(desirable | prompt) to every record (``objectives/udm.py``)."""
    if params["udm_encoder"] is None:
        return None
    from alignlab.objectives.udm import UdmWeights

    return UdmWeights(params["udm_encoder"], params["prompt_sample_size"])


def bco_reward_sums(batch: PointBatch, beta: float = 0.1) -> Tensor:
    """[Σ r, n] over a batch's rows, r = β·ρ: what BCO's running mean δ is updated with."""
    rewards = beta * batch.items.logratios.detach().double()
    return torch.stack([rewards.sum(), torch.tensor(float(rewards.numel()), dtype=torch.float64)])


def bco_fold_delta(state: dict[str, Any], sums: list[float]) -> None:
    """δ ← running mean of every training reward so far: (δ·n + Σ r) / (n + n_step), n += n_step."""
    total, n_new = sums
    n_old = float(state.get("count", 0.0))
    if n_new > 0:
        state["delta"] = (float(state.get("delta", 0.0)) * n_old + total) / (n_old + n_new)
        state["count"] = n_old + n_new


@objective(
    "bco",
    family="pointwise",
    feedback="labels",
    needs=("reference",),
    paper="Jung et al. 2024, Binary Classifier Optimization for LLM Alignment, arXiv 2404.04656",
    callback=bco_callback,
    step_statistics=StepStatistics(bco_reward_sums, bco_fold_delta, size=2),
)
def bco(
    batch: PointBatch,
    state: dict[str, Any],
    beta: float = 0.1,
    min_density_ratio: float = 0.5,
    max_density_ratio: float = 10.0,
    udm_encoder: str | None = None,
    prompt_sample_size: int = 1024,
) -> tuple[Tensor, dict[str, Tensor]]:
    """BCO: r = β·ρ(y); desirable -log σ(r - δ); undesirable -w(x)·log σ(-(r - δ)).

    δ is the running mean of every training reward seen so far, this step included (updated before use, as
    TRL's RunningMoments), kept in ``state`` ({"delta": mean, "count": n}) and saved with checkpoints;
    evaluation reads δ and never moves it (TRL's ``bco_loss(do_train=False)``). The update uses the whole
    step's global batch (every micro-batch and process: ``step_statistics``), so δ does not depend on how
    the step is cut; TRL updates per device batch, which equals this with one micro-batch per step. UDM
    weight w(x) = clip(p/(1-p), min_density_ratio, max_density_ratio) (:func:`udm_weight`) where
    p = P(desirable | prompt) arrives as ``Scores.extra["prob_desirable"]``: set ``udm_encoder`` (a frozen
    text encoder: hub id, folder or ``tiny:ARCH``) and BCO's loop callback fits a logistic regression on
    the embeddings of up to ``prompt_sample_size`` training prompts per class (``objectives/udm.py``), or
    give each record ``extras.prob_desirable`` yourself; without it w = 1 (BCO without UDM; also where a
    record has none). At ρ = 0 the loss is log 2 per example.
    Checked: huggingface/trl trl/experimental/bco/bco_trainer.py (bco_loss with do_train, RunningMoments,
    _get_udm_weight) and bco_config.py (β 0.1, density ratio clip [0.5, 10]).
    """
    labels = _labels(batch, "bco")
    rewards = beta * batch.items.logratios
    delta = torch.as_tensor(float(state.get("delta", 0.0)), dtype=rewards.dtype)
    weight = torch.ones_like(rewards)
    prob = batch.items.extra.get("prob_desirable")
    if prob is not None:
        ratio = udm_weight(prob.to(rewards.dtype), min_density_ratio, max_density_ratio).detach()
        weight = torch.where(torch.isnan(prob), weight, ratio)
    loss = torch.where(
        labels > 0.5, -F.logsigmoid(rewards - delta), -weight * F.logsigmoid(-(rewards - delta))
    )
    metrics = label_metrics(batch, rewards, labels)
    metrics["delta"] = delta
    return loss, metrics


@objective(
    "d2o",
    family="pointwise",
    feedback="labels",
    needs=("reference",),
    paper="Duan et al. 2024, Negating Negatives: Alignment with Human Negative Samples via D2O, arXiv 2403.03419",
    requires=("reference_samples",),
)
def d2o(batch: PointBatch, beta: float = 0.1, alpha: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """D2O: L = -log σ( (β/K)·Σ_{k=1..K} ρ(y_k) - α·ρ(y_l) ) for each undesirable completion y_l.

    y_1..y_K are samples from the reference policy for the same prompt, carried as auxiliary completions
    with role "sample" (``Record.roles``; an online loop or a data step generates them). Only
    undesirable rows train; desirable rows get loss 0. The paper uses two references (π_r^- for the
    samples, π_r^+ for the negative), which yields its Jeffrey-divergence regulariser; with one reference
    model both are π_ref here. With K = 1 and α = β it is DPO with the sample as the chosen answer; at
    ρ = 0 the loss is log 2. Defaults β = α = 0.1 are ours (paper values not verified).
    Checked against the paper's Eq. for L_D2O (as restated in agentsea/dark.rl D2O_README.md); the
    official code was not found.
    """
    labels = _labels(batch, "d2o")
    if SAMPLE_ROLE not in batch.aux:
        raise ValueError(
            "d2o: needs self-generated samples for each prompt as completions with role 'sample' "
            "(Record.roles); generate them from the reference policy first"
        )
    samples, mask = batch.aux[SAMPLE_ROLE], batch.aux_mask[SAMPLE_ROLE]
    k = mask.sum(dim=1).clamp(min=1).to(samples.logps.dtype)
    sample_term = torch.where(mask, samples.logratios, torch.zeros_like(samples.logratios)).sum(dim=1) / k
    logits = beta * sample_term - alpha * batch.items.logratios
    negative = (labels <= 0.5) & mask.any(dim=1)
    loss = torch.where(negative, -F.logsigmoid(logits), torch.zeros_like(logits))
    metrics = {
        "rewards/rejected": (alpha * batch.items.logratios).detach(),
        "rewards/samples": (beta * sample_term).detach(),
    }
    return loss, metrics
