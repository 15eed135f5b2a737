"""AI labelling of a data file: ``alignlab data label``.

``mode="pairs"`` (``rlaif_labeler``): every K = 2 record is judged in both orders, P(a ≻ b | a first)
and P(b ≻ a | b first), and ranked by their symmetric average (:mod:`alignlab.data.label.symmetric`),
so the label does not depend on which completion the file lists first; agreement with the labels the
file already had (Cohen's κ), the judge's position bias and the pairs whose verdict flips with the order
are reported. ``mode="scores"``: every completion gets the judge's score(s) in ``scores`` (name = the
judge's name, or its attribute names). Records the mode cannot use (K ≠ 2 for pairs) are reported with
file and line and counted by reason.

Data-side tools that are this labeller with a particular judge:
- ``self_reference_ai_feedback``: the ``selfref_feedback_strength`` judge (it answers, then critiques
  against its own answer) in both orders;
- ``salmon_principle_rm``: labels under principles, then the principles are put in front of each prompt
  (``principles=[...]``) so a reward model trained on the output is principle-conditioned (SALMON);
- ``flr_reward``: the ``flr`` judge's follow-up-likelihood scores (``mode="scores"``), then
  ``ratings_to_pairs`` ranks on-policy samples into pairs.

The job is resumable (:mod:`alignlab.data.resumable`): a batch at a time is labelled and fsynced; a
killed job re-run with ``resume=True`` skips what is done and writes nothing twice.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.data.io import LoadReport, iter_located, write_records
from alignlab.data.label.symmetric import agreement, existing_preference, label_pairs, symmetric_preference
from alignlab.data.provenance import file_hash, write_sidecar
from alignlab.data.records import Record
from alignlab.data.resumable import PartsFile
from alignlab.data.tools import register_tool
from alignlab.durable import Interrupted, StopSignals
from alignlab.judges.base import Judge
from alignlab.recipes.curation.common import SKIP_BAD_HINT, RunReport


@dataclass
class Labelled:
    records: list[Record]
    p_ab: list[float]
    p_ba: list[float]


def judge_both_orders(judge: Judge, records: Sequence[Record]) -> tuple[list[float], list[float]]:
    """P(first ≻ second | first shown first) and P(second ≻ first | second shown first) per K = 2 record."""
    prompts = [r.prompt for r in records]
    a = [r.completions[0] for r in records]
    b = [r.completions[1] for r in records]
    # One call for both orders: a judge that scores each distinct text once (rlaif) then gives the same
    # text the same value wherever it appears, so a pair listed either way gets labels summing to 1.
    both = judge.prefer_many(prompts + prompts, a + b, b + a).double().tolist()
    return both[: len(records)], both[len(records) :]


def label_records(
    judge: Any,
    records: Sequence[Record],
    mode: str = "pairs",
    principles: Sequence[str] = (),
    vote_threshold: float = 0.5,
) -> Labelled:
    """Label ``records`` (all usable for ``mode``) with ``judge`` (a list of judges for ``jury``)."""
    if mode == "jury":
        out, _ = jury_labels(judge, records, vote_threshold)
        p_ab = p_ba = []
    elif mode == "pairs":
        p_ab, p_ba = judge_both_orders(judge, records)
        out = label_pairs(records, p_ab, p_ba)
    elif mode == "scores":
        prompts = [r.prompt for r in records for _ in r.completions]
        completions = [c for r in records for c in r.completions]
        values = judge.score(prompts, completions)
        names = judge.attribute_names or [getattr(judge, "name", "judge")]
        rows = values.reshape(len(completions), -1).double().tolist()
        out, at = [], 0
        for r in records:
            scores = [{**((r.scores or [{}] * r.k)[j]), **dict(zip(names, rows[at + j]))} for j in range(r.k)]
            out.append(dataclasses.replace(r, scores=scores))
            at += r.k
        p_ab = p_ba = []
    else:
        raise ValueError(f"label mode must be 'pairs', 'scores' or 'jury', got {mode!r}")
    if principles:
        from alignlab.judges.principles import principle_records

        out = principle_records(out, principles)
    return Labelled(out, p_ab, p_ba)


def jury_labels(
    judges: Sequence[Judge], records: Sequence[Record], threshold: float = 0.5, min_agreement: float = 1.0
) -> tuple[list[Record], list[bool]]:
    """``aegis_jury`` with real judges: each judge votes per completion (its score ≥ ``threshold``:
    acceptable), the label is the majority, and a completion the jury does not agree on is escalated
    (:func:`alignlab.data.label.jury.jury_verdicts`). Returns the records with ``labels`` (None for an
    escalated tie is not allowed in records, so ties are labelled False) and ``meta["jury"]`` (votes,
    share, escalate per completion), and per record whether any completion was escalated."""
    from alignlab.data.label.jury import jury_verdicts

    prompts = [r.prompt for r in records for _ in r.completions]
    completions = [c for r in records for c in r.completions]
    votes = [
        [
            float(v) >= threshold
            for v in j.score(prompts, completions).reshape(len(completions), -1)[:, 0].tolist()
        ]
        for j in judges
    ]
    verdicts = jury_verdicts([[v[i] for v in votes] for i in range(len(completions))], min_agreement)
    out, escalated, at = [], [], 0
    for r in records:
        mine = verdicts[at : at + r.k]
        at += r.k
        meta = {
            **r.meta,
            "jury": [{"votes": v.votes, "share": round(v.share, 4), "escalate": v.escalate} for v in mine],
        }
        out.append(dataclasses.replace(r, labels=[bool(v.label) for v in mine], meta=meta))
        escalated.append(any(v.escalate for v in mine))
    return out, escalated


def usable(record: Record, mode: str) -> str | None:
    if mode == "pairs" and record.k != 2:
        return f"K = {record.k}; pairs mode labels records with exactly 2 completions (convert first)"
    return None


def label_file(
    source: str,
    out: str | os.PathLike,
    judge: Judge,
    judge_spec: Any,
    mode: str = "pairs",
    format: str = "auto",
    to_format: str = "alignlab",
    split: str | None = None,
    skip_bad: bool = False,
    batch_size: int = 32,
    resume: bool = False,
    principles: Sequence[str] = (),
    vote_threshold: float = 0.5,
    escalate_out: str | os.PathLike | None = None,
) -> RunReport:
    """Label ``source`` into ``out`` (resumable); returns the run report (agreement in ``extra``)."""
    report = RunReport(f"label ({mode})", LoadReport(source))
    parameters = {
        "mode": mode,
        "format": format,
        "split": split,
        "skip_bad": skip_bad,
        "principles": list(principles),
        "vote_threshold": vote_threshold,
    }
    state = {
        "input": str(source),
        "input_hash": file_hash(source) if Path(source).exists() else None,
        "judge": judge_spec,
        **parameters,
    }
    parts = PartsFile(out, state, resume)
    batch: list[Record] = []
    index = 0

    def flush() -> None:
        if batch:
            for record in label_records(judge, batch, mode, principles, vote_threshold).records:
                parts.add(record)
            parts.commit()
            batch.clear()

    try:
        with StopSignals() as stop:
            for where, record in iter_located(
                source, format, split, "skip" if skip_bad else "raise", report.load, skip_hint=SKIP_BAD_HINT
            ):
                report.records_in += 1
                problem = usable(record, mode)
                if problem is not None:
                    report.reject(where, problem)
                    continue
                index += 1
                if index <= parts.done:
                    continue  # labelled by the earlier run
                batch.append(record)
                if len(batch) >= batch_size:
                    flush()
                    if stop.requested is not None:
                        raise Interrupted(
                            stop.requested,
                            f"interrupted after {parts.done} labelled records; "
                            f"resume with the same command and --resume",
                        )
            flush()
    except BaseException:
        parts.close(remove=False)
        raise
    records = list(parts.records()) if mode == "pairs" else None
    write_records(records if records is not None else parts.records(), out, to_format)
    report.records_out = parts.done
    parts.close(remove=True)
    if records is not None:
        p_ab = [r.meta["ai_p_ab"] for r in records]
        p_ba = [r.meta["ai_p_ba"] for r in records]
        previous = [
            existing_preference(dataclasses.replace(r, ranking=r.meta.get("previous_ranking")))
            for r in records
        ]
        report.extra["agreement"] = agreement(
            symmetric_preference(p_ab, p_ba), previous, p_ab, p_ba
        ).to_dict()
        report.extra["ties"] = int(np.sum([r.ranking == [0, 0] for r in records]))
    if mode == "jury":
        from alignlab.data.io import iter_records

        escalated = [r for r in iter_records(out) if any(v["escalate"] for v in r.meta["jury"])]
        report.extra["escalated_records"] = len(escalated)
        if escalate_out is not None:
            write_records(escalated, escalate_out)
    write_sidecar(
        out,
        "alignlab data label",
        {"pairs": "rlaif_labeler", "jury": "aegis_jury"}.get(mode, f"label ({mode})"),
        parameters,
        [source],
        {"judge": _judge_id(judge_spec, judge)},
        report.counts(),
    )
    return report


def _judge_id(spec: Any, judge: Judge) -> str:
    import json

    return json.dumps(spec, default=str) if spec is not None else type(judge).__name__


# Data-side tools that are the labeller with a particular judge (registered so `alignlab data tools` lists them).
@register_tool(
    "self_reference_ai_feedback",
    kind="label",
    paper="Li et al. 2024 'Aligning LLMs from Self-Reference AI Feedback with one General Principle' (arXiv 2406.11190)",
    test="tests/recipes/test_curation.py::test_self_reference_labels_are_order_symmetric",
    checked="METHODS.md self_reference_ai_feedback block (abstract); judge: judges/selfref.py",
)
def self_reference_labels(judge: Judge, records: Sequence[Record]) -> Labelled:
    """Pairs labelled by a ``selfref_feedback_strength`` judge, averaged over both orders."""
    return label_records(judge, records, "pairs")


@register_tool(
    "salmon_principle_rm",
    kind="label",
    paper="Sun et al. 2023 'SALMON: Self-Alignment with Instructable Reward Models' (arXiv 2310.05910)",
    test="tests/recipes/test_curation.py::test_salmon_data_side_prefixes_principles_and_labels",
    checked="METHODS.md salmon_principle_rm block (recall); principle_records in judges/principles.py",
)
def salmon_records(judge: Judge, records: Sequence[Record], principles: Sequence[str]) -> Labelled:
    """Pairs labelled by an AI judge under ``principles``, the principles put in front of each prompt."""
    return label_records(judge, records, "pairs", principles)


@register_tool(
    "flr_reward",
    kind="label",
    paper="Zhang et al. 2024 'Aligning LLMs with Follow-up Likelihood as Reward' (arXiv 2409.13948)",
    test="tests/recipes/test_curation.py::test_flr_data_side_scores_then_pairs",
    checked="METHODS.md flr block (recall); judge: judges/flr.py",
)
def flr_pairs(judge: Judge, records: Sequence[Record], strategy: str = "best_vs_worst") -> list[Record]:
    """On-policy samples scored by the ``flr`` judge, then ranked into pairs (``ratings_to_pairs``)."""
    from alignlab.data.conversions import ratings_to_pairs

    scored = label_records(judge, records, "scores").records
    name = judge.attribute_names[0] if judge.attribute_names else getattr(judge, "name", "judge")
    return ratings_to_pairs(scored, aspect=name, strategy=strategy).records
