"""``alignlab data synthesize``: the synthesis pipelines of :mod:`alignlab.data.synth` on real models
through the generation subsystem (``build_sampler``), resumable batch by batch.

Each batch (``batch_size`` inputs, or ``batch_size`` Magpie queries) is one unit of
:class:`~alignlab.data.resumable.PartsFile`: its records are written and fsynced together, and batch k
samples with seed ``seed + k``, so a killed run resumed with ``--resume`` produces exactly the records an
uninterrupted run would, none twice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alignlab.data.io import LoadReport, iter_located, write_records
from alignlab.data.provenance import file_hash, write_sidecar
from alignlab.data.records import Record
from alignlab.data.resumable import PartsFile
from alignlab.data.synth import (
    Generate,
    codeclm,
    constitutional_revisions,
    ensemble_instruct,
    magpie,
    multifaceted_sysmsg,
)
from alignlab.durable import Interrupted, StopSignals
from alignlab.recipes.curation.common import SKIP_BAD_HINT, RunReport

METHODS = ("magpie", "codeclm", "ensemble_instruct", "multifaceted_sysmsg", "constitutional_ai")


class SamplerGenerate:
    """``Generate`` over a model: prompts (text, chat or token ids) → one sampled completion each.

    A text prompt is a request to the model, so it is sent as one user message: through the model's chat
    template when it has one (SmolLM2's ChatML), else as ``User: …\nAssistant:``; chat prompts are
    templated as they are and token ids (Magpie's pre-query template) go in untouched."""

    def __init__(
        self, model_path: str, max_new_tokens: int = 64, temperature: float = 1.0, device: str = "cpu"
    ):
        from alignlab.generation.registry import build_sampler
        from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

        settings = ModelSettings(path=model_path, device=device)
        self.model = load_causal_lm(settings, for_training=False).eval()
        self.tokenizer = load_tokenizer(settings)
        self.sampler = build_sampler("hf", self.model, self.tokenizer)
        self.model_path, self.max_new_tokens, self.temperature, self.seed = (
            model_path,
            max_new_tokens,
            temperature,
            0,
        )

    def __call__(self, prompts: list[Any]) -> list[str]:
        from alignlab.generation.types import SamplingParams

        if not prompts:
            return []
        params = SamplingParams(
            n=1, max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed
        )
        requests = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in prompts]
        rollouts = self.sampler.sample(requests, params)
        return [r.text for r in sorted(rollouts, key=lambda r: r.prompt_index)]

    def pre_query_ids(self) -> list[int]:
        """Magpie's pre-query template: the chat template's tokens before the user's text, found by
        rendering a conversation with a marker as the user's message and cutting at the marker."""
        marker = "\x00MAGPIE\x00"
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False)
        prefix = text[: text.index(marker)]
        return self.tokenizer(prefix, add_special_tokens=False)["input_ids"]


def _inputs(source: str | None, report: RunReport, skip_bad: bool) -> list[tuple[str, Record]]:
    if source is None:
        return []
    report.load = LoadReport(source)
    on_error = "skip" if skip_bad else "raise"
    return list(iter_located(source, "auto", None, on_error, report.load, skip_hint=SKIP_BAD_HINT))


def synthesize_file(
    out: str | os.PathLike,
    method: str,
    model: str,
    source: str | None = None,
    count: int = 32,
    batch_size: int = 8,
    resume: bool = False,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    rounds: int = 1,
    per_instruction: int = 2,
    models: Sequence[str] = (),
    strong_model: str | None = None,
    judge: Any = None,
    judge_spec: Any = None,
    threshold: float | None = None,
    skip_bad: bool = False,
    generate: Generate | None = None,
) -> RunReport:
    """Run ``method`` (see :data:`METHODS`) into ``out``; ``generate`` replaces the model (tests).
    ``threshold``: codeclm's score gap (default 0) or ensemble_instruct's Rouge-L (default 0.5)."""
    if method not in METHODS:
        raise ValueError(f"unknown synthesis method {method!r}; choose one of {', '.join(METHODS)}")
    if threshold is None:
        threshold = 0.5 if method == "ensemble_instruct" else 0.0
    report = RunReport(f"synthesize ({method})")
    inputs = _inputs(source, report, skip_bad)
    if method != "magpie" and source is None:
        raise ValueError(f"{method} needs --input FILE (instructions or prompt/response records)")
    gen = generate or SamplerGenerate(model, max_new_tokens, temperature)
    parameters = {
        "count": count,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "seed": seed,
        "rounds": rounds,
        "per_instruction": per_instruction,
        "threshold": threshold,
    }
    state = {
        "method": method,
        "model": model,
        "input": source,
        "input_hash": file_hash(source) if source and Path(source).exists() else None,
        "models": list(models),
        "strong_model": strong_model,
        "judge": judge_spec,
        **parameters,
    }
    parts = PartsFile(out, state, resume)
    usable = []
    for where, record in inputs:
        report.records_in += 1
        if method == "constitutional_ai" and isinstance(record.prompt, list):
            report.reject(where, "constitutional_ai revises text prompts' responses; this prompt is chat")
        else:
            usable.append(record)
    units = (
        (count + batch_size - 1) // batch_size
        if method == "magpie"
        else (len(usable) + batch_size - 1) // batch_size
    )
    extra_generators = (
        [SamplerGenerate(m, max_new_tokens, temperature) for m in models]
        if method == "ensemble_instruct" and generate is None
        else []
    )
    strong = (
        SamplerGenerate(strong_model, max_new_tokens, temperature)
        if method == "codeclm" and strong_model and generate is None
        else None
    )
    dropped: dict[str, int] = {}
    try:
        with StopSignals() as stop:
            for unit in range(parts.done, units):
                for g in (gen, *extra_generators, *([strong] if strong else [])):
                    if hasattr(g, "seed"):
                        g.seed = seed + unit
                batch = usable[unit * batch_size : (unit + 1) * batch_size]
                result = _run(
                    method,
                    gen,
                    batch,
                    min(batch_size, count - unit * batch_size),
                    rounds,
                    per_instruction,
                    extra_generators,
                    strong,
                    judge,
                    threshold,
                    seed + unit,
                )
                for reason, n in result.dropped.items():
                    dropped[reason] = dropped.get(reason, 0) + n
                parts.add(*result.records)
                parts.commit()
                if stop.requested is not None and unit + 1 < units:
                    raise Interrupted(
                        stop.requested,
                        f"interrupted after batch {unit + 1} of {units}; "
                        "resume with the same command and --resume",
                    )
    except BaseException:
        parts.close(remove=False)
        raise
    records = list(parts.records())
    write_records(records, out)
    parts.close(remove=True)
    report.records_out = len(records)
    report.extra["left_out_this_run"] = dropped
    write_sidecar(
        out,
        "alignlab data synthesize",
        method,
        parameters,
        [source] if source else [],
        {
            "model": model,
            **({"models": ",".join(models)} if models else {}),
            **({"strong_model": strong_model} if strong_model else {}),
            **({"judge": str(judge_spec)} if judge_spec is not None else {}),
        },
        report.counts(),
    )
    return report


def _run(
    method: str,
    gen: Generate,
    batch: list[Record],
    n: int,
    rounds: int,
    per_instruction: int,
    others: list[Generate],
    strong: Generate | None,
    judge: Any,
    threshold: float,
    seed: int,
) -> Any:
    instructions = [r.prompt if isinstance(r.prompt, str) else r.prompt_text() for r in batch]
    if method == "magpie":
        ids = gen.pre_query_ids() if hasattr(gen, "pre_query_ids") else [0]
        return magpie(gen, ids, n)
    if method == "multifaceted_sysmsg":
        return multifaceted_sysmsg(instructions, gen, per_instruction, seed=seed)
    if method == "constitutional_ai":
        return constitutional_revisions(
            instructions, [r.completions[0] for r in batch], gen, rounds, seed=seed
        )
    if method == "ensemble_instruct":
        return ensemble_instruct(instructions, [gen, *others], threshold)
    if judge is None or strong is None:
        raise ValueError("codeclm needs --strong-model and --judge (the judge scores both models' responses)")

    def score(xs: list[str], ys: list[str]) -> list[float]:
        values = judge.score(xs, ys)
        return values.reshape(len(xs), -1)[:, 0].double().tolist()

    # CodecLM (Wang et al. 2024): the strong LLM f_s encodes seeds to metadata, decodes them to
    # instructions and writes the Self-Rubrics rewrites; Contrastive Filtering compares f_s's responses
    # with the target f_t's (--model). Checked: the paper's abstract and overview (Fig. 1 as summarised
    # on the authors' Google Research blog and ssawant.github.io/posts/CodecLM), not its full text.
    return codeclm(instructions, strong, strong, gen, score, threshold, rounds)
