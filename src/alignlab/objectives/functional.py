"""Functional API: call a registered objective on plain tensors, without Scores or Feedback.

    loss = pairwise_loss("dpo", policy_chosen_logps, policy_rejected_logps,
                         reference_chosen_logps, reference_rejected_logps, beta=0.1)   # per pair

Each returns the per-example loss (before any reduction); hyper-parameters are checked like a config's.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.registry import ObjectiveError, ObjectiveSpec, get
from alignlab.objectives.views import ListBatch, PairBatch, PointBatch
from alignlab.scoring.scores import Scores


def _spec(name: str, kinds: tuple[str, ...], api: str) -> ObjectiveSpec:
    spec = get(name)
    if spec.feedback not in kinds:
        raise ObjectiveError(
            f"{api}: objective '{name}' consumes '{spec.feedback}' feedback, not {' or '.join(kinds)}; "
            f"use the matching functional (pairwise_loss, listwise_loss or labeled_loss)"
        )
    return spec


def _scores(
    name: str,
    spec: ObjectiveSpec,
    logps: Tensor,
    ref_logps: Tensor | None,
    lengths: Tensor | None,
    what: str,
    ratings: Tensor | None = None,
) -> Scores:
    logps = torch.as_tensor(logps)
    if "reference" in spec.needs and ref_logps is None:
        raise ObjectiveError(f"objective '{name}' uses a reference model: pass reference_{what}_logps")
    if ref_logps is not None:
        ref_logps = torch.as_tensor(ref_logps, dtype=logps.dtype)
        if ref_logps.shape != logps.shape:
            raise ObjectiveError(
                f"reference_{what}_logps has shape {tuple(ref_logps.shape)}, expected {tuple(logps.shape)}"
            )
    if lengths is not None:
        lengths = torch.as_tensor(lengths, dtype=logps.dtype)
        if lengths.shape != logps.shape:
            raise ObjectiveError(
                f"{what}_lengths has shape {tuple(lengths.shape)}, expected {tuple(logps.shape)}"
            )
    return Scores.from_logps(logps, lengths, ref_logps, ratings=ratings)


def _call(spec: ObjectiveSpec, batch: Any, hparams: dict[str, Any], state: dict[str, Any] | None) -> Tensor:
    """The loss of ``batch`` taken as a whole training batch: a step-statistics state is updated from it first."""
    full = spec.check_params(hparams)
    params = spec.loss_kwargs(full)
    held = {} if state is None else state  # an objective without ``state`` folds into a throw-away dict
    if spec.stateful:
        params["state"] = held
    stats = spec.step_statistics
    if stats is not None and not stats.after_step:
        results = stats.fold_batch(batch, full, held)
        if stats.per_example and "step_results" in inspect.signature(spec.fn).parameters:
            params["step_results"] = results
    after = stats.gather(batch, full, held) if stats is not None and stats.after_step else None
    out = spec.fn(batch, **params)
    if after is not None:
        stats.fold(held, after, full)
    return out[0] if isinstance(out, tuple) else out


def pairwise_loss(
    name: str,
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor | None = None,
    reference_rejected_logps: Tensor | None = None,
    chosen_lengths: Tensor | None = None,
    rejected_lengths: Tensor | None = None,
    *,
    margin: Tensor | None = None,
    aux: dict[str, Scores] | None = None,
    aux_mask: dict[str, Tensor] | None = None,
    state: dict[str, Any] | None = None,
    **hparams: Any,
) -> Tensor:
    """Per-pair loss [P] of a pairwise objective from summed log-probs (lengths: completion token counts).

    ``margin`` is the pair's score gap (ODPO, CoPG, MADPO...); ``aux`` extra completions by role ([P, M]);
    ``state`` a dict kept by the caller for stateful objectives (bco_pair, beta_dpo).
    """
    spec = _spec(name, ("pairs", "rewards"), "pairwise_loss")
    chosen = _scores(name, spec, policy_chosen_logps, reference_chosen_logps, chosen_lengths, "chosen")
    rejected = _scores(
        name, spec, policy_rejected_logps, reference_rejected_logps, rejected_lengths, "rejected"
    )
    if chosen.logps.shape != rejected.logps.shape:
        raise ObjectiveError("policy_chosen_logps and policy_rejected_logps must have the same shape")
    weight = torch.ones_like(chosen.logps)
    batch = PairBatch(chosen, rejected, weight, margin, aux=aux or {}, aux_mask=aux_mask or {})
    return _call(spec, batch, hparams, state)


def listwise_loss(
    name: str,
    policy_logps: Tensor,
    ranks: Tensor,
    reference_logps: Tensor | None = None,
    lengths: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    ratings: Tensor | None = None,
    state: dict[str, Any] | None = None,
    **hparams: Any,
) -> Tensor:
    """Per-list loss [G] of a listwise objective: log-probs [G, K], ranks [G, K] (lower is better, ties equal).

    ``mask`` [G, K] marks real completions (padding may hold anything); ``ratings`` [G, K, A] for score-based
    objectives.
    """
    spec = _spec(name, ("ranking", "scores", "critique"), "listwise_loss")
    items = _scores(name, spec, policy_logps, reference_logps, lengths, "list", ratings)
    if items.logps.dim() != 2:
        raise ObjectiveError(
            f"listwise_loss: policy_logps must be [groups, K], got {tuple(items.logps.shape)}"
        )
    mask = (
        torch.ones_like(items.logps, dtype=torch.bool)
        if mask is None
        else torch.as_tensor(mask, dtype=torch.bool)
    )
    ranks = torch.as_tensor(ranks, dtype=items.logps.dtype)
    ranks = torch.where(mask, ranks, torch.full_like(ranks, float("inf")))
    batch = ListBatch(items, ranks, mask, torch.ones(items.logps.shape[0], dtype=items.logps.dtype))
    return _call(spec, batch, hparams, state)


def labeled_loss(
    name: str,
    policy_logps: Tensor,
    labels: Tensor | None,
    reference_logps: Tensor | None = None,
    lengths: Tensor | None = None,
    *,
    group_index: Tensor | None = None,
    aux: dict[str, Scores] | None = None,
    aux_mask: dict[str, Tensor] | None = None,
    state: dict[str, Any] | None = None,
    **hparams: Any,
) -> Tensor:
    """Per-completion loss [N] of a pointwise objective: labels 1 = good, 0 = bad (None for demonstrations)."""
    spec = _spec(name, ("labels", "demonstrations"), "labeled_loss")
    items = _scores(name, spec, policy_logps, reference_logps, lengths, "completion")
    if spec.feedback == "labels" and labels is None:
        raise ObjectiveError(f"objective '{name}' needs labels (1 = good, 0 = bad)")
    label_tensor = None if labels is None else torch.as_tensor(labels, dtype=items.logps.dtype)
    batch = PointBatch(
        items, torch.ones_like(items.logps), label_tensor, group_index, aux=aux or {}, aux_mask=aux_mask or {}
    )
    return _call(spec, batch, hparams, state)
