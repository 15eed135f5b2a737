"""Learning from text critiques (METHODS.md section E): CUT, Chain of Hindsight, ILF.

Each ``prepare`` hook builds records from the critique; the losses read the scorings the engine made:
CUT scores the same completion under two contexts (with and without the judgement, via
``Record.context_prefixes`` and an auxiliary role), Chain of Hindsight scores two responses placed in
one feedback sequence, ILF imitates a selected refinement.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from alignlab.data.records import Record, RecordError
from alignlab.objectives.record_rewrites import best_indices, is_good, single, where
from alignlab.objectives.registry import objective
from alignlab.objectives.score_tensors import nll, token_fields
from alignlab.objectives.views import ListBatch, PointBatch

CUT_PLAIN = "cut_plain"


# --------------------------------------------------------------------------------------- CUT
def cut_prepare(
    records: list[Record],
    judgement_template: str = "\n\n### Judgment:\n{judgement}\n\n### Response:\n",
) -> list[Record]:
    """One record per completion. A completion with a negative judgement (``critique`` given and its label
    False, or no label) becomes [y under "judgement ⊕", y with no context] with roles ["", "cut_plain"]:
    the first is imitated (the response matches its judgement), the second is where unlikelihood acts.
    A completion with a positive label, or without a critique, becomes a plain demonstration."""
    out = []
    for n, record in enumerate(records):
        if record.critique is None and record.labels is None:
            raise RecordError(
                "CUT needs a judgement ('critique') for negative responses or labels for positive ones",
                where(record, n),
                "give each completion a critique (and labels: true = response fits the instruction)",
            )
        for i, text in enumerate(record.completions):
            judgement = record.critique[i] if record.critique is not None else None
            positive = record.labels is not None and bool(record.labels[i])
            if positive or not judgement:
                out.append(single(record.prompt, text, record))
                continue
            new = single(record.prompt, text, record)
            new.completions = [text, text]
            new.context_prefixes = [judgement_template.format(judgement=judgement), None]
            new.roles = ["", CUT_PLAIN]
            out.append(new)
    return out


@objective(
    "cut",
    family="reference_free",
    feedback="critique",
    paper="Xu et al. 2023, Reasons to Reject? Aligning LMs with Judgments (CUT), arXiv 2312.14591",
    needs=("token_logps",),
    prepare=cut_prepare,
)
def cut(
    batch: ListBatch,
    threshold: float = 1.1,
    unlikelihood_weight: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Contrastive Unlikelihood Training.

    MLE on every main completion: L_MLE = -(1/|y|)·Σ_t log p_j(y_t), p_j = π(y_t | x, j, y_<t) for a
    judgement-conditioned response (Align-N) and π(y_t | x, y_<t) for a plain one (Align-P).
    For Align-N, the same y is also scored without the judgement, p(y_t) = π(y_t | x, y_<t), and token t is
    flagged inappropriate if sg(p_j(y_t) / p(y_t)) > λ (``threshold``): the judgement, which describes the
    flaw, makes the token more likely. UL term: L_UL = -(1/|y|)·Σ_t [flagged: w·log(1 - p(y_t));
    else: log p(y_t)], w = ``unlikelihood_weight``. Per record L = L_MLE + L_UL (Align-N) or L_MLE.
    Defaults: λ = 1.1 and w = 1 (the repo's fine-tuning-unlike.sh; finetune_unlikelihood.py defaults w=0.1),
    judgement template after templates/alpaca.json ``prompt_no_input_judge``.
    The official code averages tokens over the whole batch and halves the sum (L = (L̄_MLE + L̄_UL)/2 when a
    batch has any Align-N example); here each record is a token mean and the halving is dropped.
    Checked: wwxu21/CUT modeling_llama_unlikelihood.py `LlamaForCausalLM.forward` / `unlikelihood`,
    finetune_unlikelihood.py (data construction).
    """
    items = batch.items
    logp, mask = token_fields(items, "cut")  # [G, K, T]
    real = batch.mask.to(logp.dtype)
    mle_sum = ((logp * mask).sum(-1) * real).sum(-1)
    mle_len = (mask.sum(-1) * real).sum(-1).clamp(min=1)
    mle = -mle_sum / mle_len
    loss = mle
    flagged_frac = torch.zeros_like(mle)
    if CUT_PLAIN in batch.aux:
        plain = batch.aux[CUT_PLAIN]
        has = batch.aux_mask[CUT_PLAIN][:, 0]
        p_logp, p_mask = token_fields(plain, "cut")
        p_logp, p_mask = p_logp[:, 0], p_mask[:, 0]  # [G, T]
        j_logp = logp[:, 0]  # the judgement-conditioned scoring of the same tokens
        flagged = ((j_logp - p_logp).detach() > torch.log(torch.tensor(threshold, dtype=logp.dtype))) & (
            p_mask > 0
        )
        log_one_minus = torch.log1p(-p_logp.exp().clamp(max=1 - 1e-6))
        per_token = torch.where(flagged, unlikelihood_weight * log_one_minus, p_logp)
        ul = -(per_token * p_mask).sum(-1) / p_mask.sum(-1).clamp(min=1)
        loss = mle + torch.where(has, ul, torch.zeros_like(ul))
        flagged_frac = (flagged.to(logp.dtype) * p_mask).sum(-1) / p_mask.sum(-1).clamp(min=1)
    return loss, {"cut/mle": mle.detach(), "cut/flagged_fraction": flagged_frac.detach()}


# ------------------------------------------------------------------------- Chain of Hindsight
def chain_of_hindsight_prepare(
    records: list[Record],
    good_phrase: str = "A helpful answer: ",
    bad_phrase: str = "An unhelpful answer: ",
    separator: str = "\n",
    seed: int = 0,
) -> list[Record]:
    """Pairs (the best and the worst of a ranking, or a good and a bad label) become one feedback sequence
    x ⊕ phrase_1 ⊕ y_1 ⊕ sep ⊕ phrase_2 ⊕ y_2 in random order (seeded by ``seed`` and the record position).
    It is laid out as two scored completions: y_1 with context phrase_1, and y_2 with context
    phrase_1 ⊕ y_1 ⊕ sep ⊕ phrase_2, so only model-output tokens are scored and y_2 sees y_1."""
    out = []
    for n, record in enumerate(records):
        good = [i for i in range(record.k) if is_good(record, i)]
        bad = [i for i in range(record.k) if not is_good(record, i)]
        if record.ranking is not None and record.labels is None:
            bad = [max(range(record.k), key=lambda i: (record.ranking[i], i))]
            bad = [] if record.ranking[bad[0]] == min(record.ranking) else bad
        if not good or not bad:
            raise RecordError(
                "Chain of Hindsight needs a better and a worse completion per record",
                where(record, n),
                "use pairs or rankings with a strict preference, or good/bad labels",
            )
        pair = [(good[0], good_phrase), (bad[0], bad_phrase)]
        if random.Random(f"{seed}:{n}").random() < 0.5:
            pair.reverse()
        (i1, phrase1), (i2, phrase2) = pair
        first, second = record.completions[i1], record.completions[i2]
        new = single(record.prompt, first, record, coh_order="good_first" if i1 == good[0] else "bad_first")
        new.completions = [first, second]
        new.context_prefixes = [phrase1, phrase1 + first + separator + phrase2]
        out.append(new)
    return out


@objective(
    "chain_of_hindsight",
    family="sft",
    feedback="critique",
    paper="Liu et al. 2023, Chain of Hindsight Aligns Language Models with Feedback, arXiv 2302.02676",
    prepare=chain_of_hindsight_prepare,
)
def chain_of_hindsight(batch: ListBatch) -> Tensor:
    """Chain of Hindsight: NLL of the model-output tokens of a feedback sequence, none of the feedback phrases.

    L = -(log π(y_1 | x, p_1) + log π(y_2 | x, p_1, y_1, sep, p_2)) / (|y_1| + |y_2|) per sequence, built by
    :func:`chain_of_hindsight_prepare`; generate after the positive phrase. The paper's random masking of
    a few past tokens and the pre-training regulariser are not part of this loss (the regulariser is a
    second objective, `sft` on pre-training text). Unverified: paper recall (lhao499/chain-of-hindsight
    not in the index).
    """
    items, mask = batch.items, batch.mask.to(batch.items.logps.dtype)
    return -(items.logps * mask).sum(-1) / (items.lengths * mask).sum(-1).clamp(min=1)


# --------------------------------------------------------------------------------------- ILF
def ilf_prepare(records: list[Record], score_key: str = "") -> list[Record]:
    """Records hold the original output first (``critique[0]`` = its language feedback) and candidate
    refinements after it; the refinement with the highest selector score (``scores``, e.g. similarity of
    the refinement to the feedback) becomes a demonstration for x. One refinement needs no score."""
    out = []
    for n, record in enumerate(records):
        if record.k < 2:
            raise RecordError(
                "ILF needs the original output followed by at least one refinement",
                where(record, n),
                "put the original output first in 'completions', refinements after it",
            )
        if record.k == 2:
            best = 1
        else:
            if record.scores is None:
                raise RecordError(
                    "with several refinements, ILF needs a selector score per completion",
                    where(record, n),
                    "give 'scores' (e.g. {'similarity': 0.8}) for each refinement",
                )
            candidates = Record(record.prompt, record.completions[1:], scores=record.scores[1:], id=record.id)
            best = 1 + best_indices(candidates, n, score_key)[0]
        out.append(
            single(record.prompt, record.completions[best], record, ilf_refinement_of=record.completions[0])
        )
    return out


@objective(
    "ilf",
    family="sft",
    feedback="demonstrations",
    paper="Scheurer et al. 2023, Training LMs with Language Feedback at Scale (ILF), arXiv 2303.16755",
    prepare=ilf_prepare,
)
def ilf(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """Imitation learning from Language Feedback: L = -(1/|y*|)·log π_θ(y* | x) on the selected refinement.

    Refinements of an output y given feedback f are generated beforehand (or by the online loop, which
    also iterates); :func:`ilf_prepare` selects the best one per record. The loss is `sft` on that data.
    Unverified: abstract and paper recall.
    """
    return nll(batch.items, normalize, "ilf")
