"""The numbers the selectors need, from models: embeddings (Deita, GOT-D), CHES values (ches_filter) and
AI-judge confidences (CLEAR); and ``select_file``, ``alignlab data select``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from alignlab.data.io import LoadReport, copy_good_hint, iter_located, read_records, write_records
from alignlab.data.label.symmetric import symmetric_preference
from alignlab.data.provenance import write_sidecar
from alignlab.data.records import Record
from alignlab.data.select.base import hashed_embeddings, record_text
from alignlab.data.select.ches_filter import ches, ches_filter
from alignlab.data.select.clear import clear_curation
from alignlab.data.select.deita import deita
from alignlab.data.select.got_d import got_d_selection
from alignlab.data.select.zip_fit import zip_fit
from alignlab.judges.base import Judge
from alignlab.recipes.curation.common import SKIP_BAD_HINT, RunReport

METHODS = ("deita", "zip_fit", "got_d_selection", "ches_filter", "clear_curation")
PAIR_METHODS = ("ches_filter", "clear_curation")


def embed(texts: Sequence[str], encoder: str = "hashed") -> np.ndarray:
    """Embeddings of ``texts``: ``hashed`` (character 3-grams, no model) or a TextEncoder (tiny:ARCH,
    a folder or a hub id: mean-pooled last hidden states)."""
    if encoder == "hashed":
        return hashed_embeddings(texts)
    from alignlab.models.embedding import TextEncoder

    return TextEncoder(encoder).embed(list(texts)).double().numpy()


def oriented(record: Record) -> tuple[str, str]:
    """(chosen, rejected) of a strictly ranked pair."""
    a, b = record.ranking
    return (
        (record.completions[0], record.completions[1])
        if a < b
        else (record.completions[1], record.completions[0])
    )


@torch.no_grad()
def ches_values(
    model: Any, tokenizer: Any, records: Sequence[Record], normalise: bool = False
) -> list[float]:
    """CHES of each pair: h_y = Σ of the last hidden states at the positions that predict y's tokens."""
    from alignlab.data.tokenize import encode_completion, encode_prompt

    device = next(model.parameters()).device
    out = []
    for record in records:
        prompt_ids, _ = encode_prompt(tokenizer, record.prompt)
        sums, lengths = [], []
        for text in oriented(record):
            ids = encode_completion(tokenizer, text)
            full = torch.tensor([prompt_ids + ids], device=device)
            hidden = model(full, output_hidden_states=True).hidden_states[-1][0]
            start = len(prompt_ids) - 1  # position t predicts token t + 1
            sums.append(hidden[start : start + len(ids)].double().sum(0).cpu().numpy())
            lengths.append(len(ids))
        n_plus, n_minus = lengths if normalise else (1, 1)
        out.append(ches(sums[0], sums[1], n_plus, n_minus))
    return out


def confidences(judge: Judge, records: Sequence[Record]) -> list[float]:
    """P(chosen ≻ rejected) from ``judge``, averaged over both orders (CLEAR's confidence for pairs)."""
    pairs = [oriented(r) for r in records]
    prompts = [r.prompt for r in records]
    p_ab = judge.prefer_many(prompts, [c for c, _ in pairs], [r for _, r in pairs]).double().tolist()
    p_ba = judge.prefer_many(prompts, [r for _, r in pairs], [c for c, _ in pairs]).double().tolist()
    return symmetric_preference(p_ab, p_ba).tolist()


def _values(records: Sequence[Record], name: str) -> list[float]:
    values = []
    for i, r in enumerate(records):
        if name not in r.extras or not isinstance(r.extras[name], (int, float)):
            raise ValueError(f"record {i} has no number extras.{name} (--values-from {name})")
        values.append(float(r.extras[name]))
    return values


def _rating(records: Sequence[Record], name: str | None) -> list[float] | None:
    if name is None:
        return None
    out = []
    for i, r in enumerate(records):
        if not r.scores or name not in r.scores[0]:
            raise ValueError(f"record {i} has no rating {name!r} on its first completion")
        out.append(float(r.scores[0][name]))
    return out


def select_file(
    source: str,
    out: str | os.PathLike,
    method: str,
    budget: int | float | None = None,
    target: str | None = None,
    encoder: str = "hashed",
    complexity: str | None = None,
    quality: str | None = None,
    threshold: float | None = None,
    q: float = 0.05,
    values_from: str | None = None,
    judge: Judge | None = None,
    judge_spec: Any = None,
    ches_model: str | None = None,
    correct: bool = False,
    format: str = "auto",
    to_format: str = "alignlab",
    split: str | None = None,
    skip_bad: bool = False,
    epsilon: float = 0.1,
    ot_cost: str = "sqeuclidean",
    complexity_scorer: str | None = None,
    quality_scorer: str | None = None,
) -> RunReport:
    if method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; choose one of {', '.join(METHODS)}")
    report = RunReport(f"select ({method})", LoadReport(source))
    records: list[Record] = []
    on_error = "skip" if skip_bad else "raise"
    for where, record in iter_located(source, format, split, on_error, report.load, skip_hint=SKIP_BAD_HINT):
        report.records_in += 1
        if method in PAIR_METHODS and (
            record.k != 2 or record.ranking is None or record.ranking[0] == record.ranking[1]
        ):
            report.reject(
                where,
                f"{method} needs a strictly ranked pair (K = 2); this record has K = {record.k}"
                + ("" if record.ranking else " and no ranking"),
            )
            continue
        records.append(record)
    models: dict[str, str] = {}
    if method in ("deita", "got_d_selection", "zip_fit") and budget is None:
        raise ValueError(f"{method} needs --budget (a count, or a fraction such as 0.5)")
    if method == "deita":
        models["encoder"] = encoder
        if (complexity and complexity_scorer) or (quality and quality_scorer):
            raise ValueError(
                "deita: give --complexity (a rating of the records) or --complexity-scorer (a model), "
                "not both; the same for --quality / --quality-scorer"
            )
        embeddings = embed([record_text(r) for r in records], encoder)
        tau = 0.9 if threshold is None else threshold
        if complexity_scorer or quality_scorer:
            from alignlab.scoring.deita_scorer import DeitaScorer, evol_scores

            scorers = {}
            for role, path in (("complexity", complexity_scorer), ("quality", quality_scorer)):
                if path:
                    scorers[role] = DeitaScorer(path)
                    models[f"{role}_scorer"] = path
            evol = evol_scores(records, scorers.get("complexity"), scorers.get("quality"))
            if complexity or quality:  # the other one from a rating: s = Σ_t c_t q_t needs per-turn both
                rating = _rating(records, complexity or quality)
                evol = [e * r for e, r in zip(evol, rating)]
            selection = deita(records, budget, embeddings, threshold=tau, evol=evol)
        else:
            selection = deita(
                records, budget, embeddings, _rating(records, complexity), _rating(records, quality), tau
            )
    elif method in ("zip_fit", "got_d_selection"):
        if target is None:
            raise ValueError(f"{method} needs --target FILE (examples of the target domain)")
        targets = [record_text(r) for r in read_records(target, skip_hint=copy_good_hint(target))]
        if method == "zip_fit":
            selection = zip_fit(records, targets, budget)
        else:
            models["encoder"] = encoder
            texts = [record_text(r) for r in records]
            both = embed(texts + targets, encoder)
            selection = got_d_selection(
                records, budget, both[: len(texts)], both[len(texts) :], epsilon=epsilon, cost=ot_cost
            )
    elif method == "ches_filter":
        if values_from is not None:
            values = _values(records, values_from)
        elif ches_model is not None:
            from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

            settings = ModelSettings(path=ches_model)
            model = load_causal_lm(settings, for_training=False).eval()
            values = ches_values(model, load_tokenizer(settings), records)
            models["ches_model"] = ches_model
        else:
            raise ValueError(
                "ches_filter needs --ches-model PATH (hidden states) or --values-from NAME (extras)"
            )
        selection = ches_filter(records, values, q)
    else:
        if values_from is not None:
            values = _values(records, values_from)
        elif judge is not None:
            values = confidences(judge, records)
            models["judge"] = str(judge_spec)
        else:
            raise ValueError(
                "clear_curation needs --judge SPEC (AI confidence) or --values-from NAME (extras)"
            )
        selection = clear_curation(records, values, 0.5 if threshold is None else threshold, correct)
    write_records(selection.records, out, to_format)
    report.records_out = len(selection.records)
    report.extra["left_out"] = dict(selection.dropped)
    parameters = {
        "budget": budget,
        "target": target,
        "encoder": encoder,
        "complexity": complexity,
        "quality": quality,
        "threshold": threshold,
        "q": q,
        "values_from": values_from,
        "correct": correct,
        "format": format,
        "skip_bad": skip_bad,
    }
    if method == "got_d_selection":
        parameters.update(epsilon=epsilon, ot_cost=ot_cost)
    if method == "deita":
        parameters.update(complexity_scorer=complexity_scorer, quality_scorer=quality_scorer)
    write_sidecar(
        out,
        "alignlab data select",
        method,
        parameters,
        [source] + ([target] if target else []),
        models,
        report.counts(),
    )
    return report
