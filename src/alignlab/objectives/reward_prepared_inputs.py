"""Reward-model objectives whose inputs are built by a prepare hook: seq2seq RM (rewrite y_l into y_w),
POLAR and PIT (a second response in context), FSPO (a user's few-shot pairs in the prompt) and
fine-grained RLHF (per-aspect segment classifiers).

Second responses ride in ``Record.context_prefixes`` (attended to, never scored) with the templates of
``alignlab.data.reward_templates``, which the judges of ``alignlab.judges.context_conditioned`` use too, so they score
exactly the layout trained here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.data.records import Record, RecordError
from alignlab.data.reward_templates import (
    PIT_PAPER,
    PIT_TEMPLATE,
    POLAR_PAPER,
    POLAR_TEMPLATE,
    SEQ2SEQ_PAPER,
    SEQ2SEQ_TEMPLATE,
    render_context,
)
from alignlab.data.segments import FINE_GRAINED_PAPER, segment_labels, segment_text
from alignlab.objectives.registry import objective
from alignlab.objectives.reward import bt_loss, reward_metrics, scalar_rewards
from alignlab.objectives.views import ListBatch, PairBatch, PointBatch


def _where(record: Record, n: int) -> str:
    return f"record {record.id or n}"


def strict_pairs(record: Record, n: int, name: str) -> list[tuple[int, int]]:
    """(winner, loser) completion indices of every strictly ordered pair of a ranked record."""
    if record.ranking is None:
        raise RecordError(f"{name} needs ranked pairs", _where(record, n), "give each record a `ranking`")
    return [(i, j) for i in range(record.k) for j in range(record.k) if record.ranking[i] < record.ranking[j]]


def _plain(record: Record, completions: list[str], **changes: Any) -> Record:
    """A new record of ``completions`` for ``record``'s prompt: its weight and provenance, no layout."""
    return Record(
        record.prompt, completions, weight=record.weight, source=record.source,
        annotator=record.annotator, id=record.id, meta=dict(record.meta), **changes,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ seq2seq RM
def seq2seq_prepare(records: list[Record], template: str = SEQ2SEQ_TEMPLATE) -> list[Record]:
    """Each strict pair (y_w, y_l) → a demonstration of y_w whose context prefix holds y_l (the rewrite)."""
    out = []
    for n, r in enumerate(records):
        for w, lose in strict_pairs(r, n, "seq2seq_rm"):
            prefix = template.format(rejected=r.completions[lose])
            out.append(_plain(r, [r.completions[w]], context_prefixes=[prefix]))
    return out


@objective(
    "seq2seq_rm",
    family="reward_model",
    feedback="demonstrations",
    prepare=seq2seq_prepare,
    paper=SEQ2SEQ_PAPER,
)
def seq2seq_rm(batch: PointBatch, normalize: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Seq2seq reward model: L = −log P_RM(y_w | x, y_l) (sequence MLE of the better response given the worse).

    The prepare hook puts y_l in the context prefix (``template``); the loss is the summed token NLL of
    y_w (``normalize``: divided by |y_w|). The trained causal LM gives token rewards through the judge
    ``seq2seq_rm`` (+ for tokens it keeps, − for tokens it would change).
    Unverified: from the METHODS block (abstract of arXiv 2409.00162); the paper's exact input format
    was not read.
    """
    logps, lengths = batch.items.logps, batch.items.lengths
    loss = -(logps / lengths.clamp(min=1)) if normalize else -logps
    with torch.no_grad():
        metrics = {"seq2seq/nll_per_token": (-logps / lengths.clamp(min=1)).mean()}
    return loss, metrics


# ------------------------------------------------------------------------------------------------ POLAR
def polar_prepare(
    records: list[Record], reference_field: str = "reference", template: str = POLAR_TEMPLATE
) -> list[Record]:
    """Put ``meta[reference_field]`` (the reference response) in every completion's context prefix."""
    out = []
    for n, r in enumerate(records):
        ref = r.meta.get(reference_field)
        if not isinstance(ref, str) or not ref:
            raise RecordError(
                f"polar needs a reference response in meta.{reference_field}",
                _where(r, n),
                f'add "meta": {{"{reference_field}": "..."}} (or build pretraining triples with polar_triples)',
            )
        out.append(dataclasses.replace(r, context_prefixes=[template.format(reference=ref)] * r.k))
    return out


def polar_triples(
    samples: dict[str, dict[str, list[str]]], reference_field: str = "reference"
) -> list[Record]:
    """POLAR pretraining pairs from ``{prompt: {policy: [responses...]}}``.

    For every prompt, policy p with ≥ 2 responses and other policy q: reference y_1 = p's first response,
    chosen y_2 = p's second (same policy), rejected y_3 = q's first (different policy). Deterministic.
    """
    out = []
    for prompt, by_policy in samples.items():
        policies = sorted(by_policy)
        for p in policies:
            if len(by_policy[p]) < 2:
                continue
            for q in policies:
                if q == p or not by_policy[q]:
                    continue
                y1, y2, y3 = by_policy[p][0], by_policy[p][1], by_policy[q][0]
                out.append(
                    Record(prompt, [y2, y3], ranking=[0, 1], meta={reference_field: y1, "policies": [p, q]})
                )
    return out


@objective(
    "polar",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    prepare=polar_prepare,
    paper=POLAR_PAPER,
)
def polar(batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """POLAR: L = −log σ(r(x, y_ref, y_w) − r(x, y_ref, y_l)), the reward conditioned on a reference response.

    Pretraining (policy discrimination): y_ref, y_w from one policy, y_l from another (:func:`polar_triples`);
    fine-tuning: human pairs with a reference answer. The reference is ``meta[reference_field]``, placed in
    the context prefix by the prepare hook.
    Checked: InternLM/POLAR README.md (reference + chosen + rejected fine-tuning format; contrastive
    same-policy objective); the xtuner loss code itself was not read (formula per the METHODS block).
    """
    rw, rl = scalar_rewards(batch, "polar")
    return bt_loss(rw, rl), reward_metrics(rw, rl)


# -------------------------------------------------------------------------------------------------- PIT
def pit_prepare(
    records: list[Record], template: str = PIT_TEMPLATE, self_anchors: bool = False
) -> list[Record]:
    """Each strict pair → completions [y_w given y_l, y_l given y_w] ranked [0, 1]; with ``self_anchors``
    also [y_w given y_w, y_l given y_l] ranked between them: gap(w over l) > gap(w|w), gap(l|l) > gap(l over w)."""
    out = []
    for n, r in enumerate(records):
        for w, lose in strict_pairs(r, n, "pit_gap_reward"):
            yw, yl = r.completions[w], r.completions[lose]
            completions, refs, ranking = [yw, yl], [yl, yw], [0, 1]
            if self_anchors:
                completions, refs, ranking = [yw, yw, yl, yl], [yl, yw, yl, yw], [0, 1, 1, 2]
            prefixes = [template.format(reference=ref) for ref in refs]
            out.append(_plain(r, completions, ranking=ranking, context_prefixes=prefixes))
    return out


@objective(
    "pit_gap_reward",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    prepare=pit_prepare,
    paper=PIT_PAPER,
)
def pit_gap_reward(batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """PIT gap reward: L = −log σ(r_gap(x, y_l, y_w) − r_gap(x, y_w, y_l)), r_gap(x, y_ref, y) = improvement of y over y_ref.

    The prepare hook scores y_w with y_l as its reference and y_l with y_w as its reference (both orders),
    so the pair view's BT loss is the gap-style loss above. ``self_anchors`` adds the self-comparisons
    r_gap(x, y_w, y_w), r_gap(x, y_l, y_l) ranked between the two (BT over all 5 ordered pairs).
    Unverified: abstract of arXiv 2310.00898 (the self-anchored ranking is recalled, hence off by default).
    """
    rw, rl = scalar_rewards(batch, "pit_gap_reward")
    return bt_loss(rw, rl), reward_metrics(rw, rl)


# ------------------------------------------------------------------------------------------------- FSPO
FSPO_HEADER = "Preferences this user gave before:\n"
FSPO_EXAMPLE = "Example {i}\nQuestion: {prompt}\nPreferred: {chosen}\nNot preferred: {rejected}\n"
FSPO_QUERY = "\nNew question from the same user:\n"


def _winner_loser(r: Record) -> tuple[str, str]:
    w, lose = (0, 1) if r.ranking[0] < r.ranking[1] else (1, 0)
    return r.completions[w], r.completions[lose]


def fewshot_block(shots: list[Record]) -> str:
    """The few-shot text: header, then each shot's question, preferred and not-preferred responses."""
    lines = [FSPO_HEADER]
    for i, s in enumerate(shots, 1):
        chosen, rejected = _winner_loser(s)
        lines.append(
            FSPO_EXAMPLE.format(i=i, prompt=render_context(s.prompt), chosen=chosen, rejected=rejected)
        )
    return "".join(lines) + FSPO_QUERY


def fspo_prepare(records: list[Record], shots: int = 4) -> list[Record]:
    """Prepend to each pair's prompt the first ``shots`` other pairs of the same user (``annotator``), in
    data order, never the query pair itself. Text prompts get the block in front; chat prompts get it as
    (the start of) the system message. ``shots = 0`` leaves every record unchanged."""
    if shots < 0:
        raise ValueError(f"fspo_fewshot_pm: shots must be >= 0, got {shots}")
    if shots == 0:
        return list(records)
    by_user: dict[str, list[int]] = {}
    for n, r in enumerate(records):
        if not r.annotator:
            raise RecordError(
                "fspo_fewshot_pm needs the user of each pair", _where(r, n), "set `annotator` (user id)"
            )
        if r.ranking is None or r.k != 2 or r.ranking[0] == r.ranking[1]:
            raise RecordError(
                "fspo_fewshot_pm needs strict pairs", _where(r, n), "give 2 completions and a ranking"
            )
        by_user.setdefault(r.annotator, []).append(n)
    out = []
    for n, r in enumerate(records):
        others = [records[m] for m in by_user[r.annotator] if m != n][:shots]
        block = fewshot_block(others)
        if isinstance(r.prompt, str):
            prompt: Any = block + r.prompt
        elif r.prompt and r.prompt[0]["role"] == "system":
            prompt = [{"role": "system", "content": block + r.prompt[0]["content"]}, *r.prompt[1:]]
        else:
            prompt = [{"role": "system", "content": block.rstrip("\n")}, *r.prompt]
        out.append(dataclasses.replace(r, prompt=prompt, meta={**r.meta, "fspo_shots": len(others)}))
    return out


@objective(
    "fspo_fewshot_pm",
    family="reward_model",
    feedback="rewards",
    needs=("rewards",),
    prepare=fspo_prepare,
    paper="Singh et al. 2025 'FSPO: Few-Shot Preference Optimization of Synthetic Preference Data' (arXiv 2502.19312)",
)
def fspo_fewshot_pm(batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """Few-shot personalised preference model: L = −log σ(r(c_u ⊕ x, y_w) − r(c_u ⊕ x, y_l)).

    c_u = the user's ``shots`` other labelled pairs rendered in the prompt (:func:`fspo_prepare`), so the
    reward model meta-learns to read a user's preferences in context; with shots = 0 it is ``bt``.
    Unverified: abstract of arXiv 2502.19312 (the paper trains policies with DPO/IPO on such prompts; this
    is its preference-model form, with this library's few-shot text layout).
    """
    rw, rl = scalar_rewards(batch, "fspo_fewshot_pm")
    return bt_loss(rw, rl), reward_metrics(rw, rl)


# ------------------------------------------------------------------------------------------ fine-grained
def fine_grained_prepare(
    records: list[Record], aspects: str = "", segmentation: str = "sentence"
) -> list[Record]:
    """One record per (completion, segment j): the completion cut after segment j, with a rating per aspect:
    1 = no error span of that aspect overlaps segment j, 0 = one does (spans carry the aspect as label)."""
    names = [a.strip() for a in aspects.split(",") if a.strip()]
    if not names:
        names = sorted({s.label for r in records for spans in (r.spans or []) for s in spans})
    if not names:
        raise ValueError(
            "fine_grained_rm: no aspects: set `aspects` (comma-separated) or label the error spans"
        )
    out = []
    for n, r in enumerate(records):
        if r.spans is None:
            raise RecordError(
                "fine_grained_rm needs error spans per completion",
                _where(r, n),
                "add `spans` (label = aspect)",
            )
        for text, spans in zip(r.completions, r.spans):
            segments = segment_text(text, segmentation)
            labels = segment_labels(spans, segments, names)
            for (_, end), row in zip(segments, labels):
                scores = [{a: float(v) for a, v in zip(names, row)}]
                out.append(_plain(r, [text[:end]], scores=scores))
    return out


@objective(
    "fine_grained_rm",
    family="reward_model",
    feedback="scores",
    needs=("rewards",),
    prepare=fine_grained_prepare,
    paper=FINE_GRAINED_PAPER,
)
def fine_grained_rm(batch: ListBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-aspect segment classifiers: L = mean_k BCE(r_k(x, y_≤end(j)), 1[segment j has no aspect-k error]).

    One reward-head output per aspect (model.num_attributes = number of aspects, in sorted name order);
    each is a logit read at the end of the prefix that stops after segment j. The judge
    ``fine_grained_rm`` combines them into R_t = Σ_k w_k r_k(j)·1[t = end(j)].
    Unverified: abstract + recall of arXiv 2306.01693 (binary segment classifiers trained with cross-entropy).
    """
    r, s = batch.items.rewards, batch.items.ratings
    if r is None or s is None:
        raise ValueError(
            "fine_grained_rm: needs reward-head outputs and per-aspect segment labels (its prepare hook)"
        )
    if r.dim() == 2:
        r = r[..., None]
    if r.shape[-1] != s.shape[-1]:
        raise ValueError(
            f"fine_grained_rm: the model has {r.shape[-1]} outputs but the data has {s.shape[-1]} aspects "
            f"({batch.rating_names}); set model.num_attributes: {s.shape[-1]}"
        )
    present = batch.mask[..., None] & ~torch.isnan(s)
    bce = F.binary_cross_entropy_with_logits(r.float(), torch.nan_to_num(s).float(), reduction="none")
    bce = torch.where(present, bce, torch.zeros_like(bce))
    per_group = bce.sum((1, 2)) / present.sum((1, 2)).clamp(min=1)
    with torch.no_grad():
        correct = ((r > 0).float() == torch.nan_to_num(s)).float()
        per_aspect = (correct * present).sum((0, 1)) / present.sum((0, 1)).clamp(min=1)
        metrics = {f"accuracy/{name}": per_aspect[i] for i, name in enumerate(batch.rating_names)}
    return per_group, metrics
