"""Instruction synthesis and AI-feedback pipelines over a text generator (METHODS.md family L).

Every pipeline takes ``generate``: a function from a list of prompts (text or chat messages, or token ids
for Magpie's template) to one completion text each; :mod:`alignlab.recipes.curation` builds it from a
sampler (``alignlab.generation.build_sampler``), tests pass plain Python functions. Each returns records
plus the counts of what its filters left out, by reason.

- ``magpie`` (Xu et al. 2024, arXiv 2406.08464): an aligned chat model is given only the pre-query part
  of its template (e.g. ``<|im_start|>user\\n``) and writes a user query; the query, templated, gets the
  response. The generator's first prompt holds template tokens only, no user content.
- ``codeclm`` (Wang et al. 2024, arXiv 2404.05875): seed instructions → metadata (use case, skills) →
  new instructions; Self-Rubrics rewrite them harder; Contrastive Filtering keeps an instruction only when
  a strong model's response beats the target model's by a judge-score gap > threshold.
- ``ensemble_instruct`` (Lee et al. 2023, arXiv 2310.13961): several LMs answer; a sample is kept when the
  outputs agree: mean pairwise Rouge-L F ≥ threshold; the kept output is the one most similar to the others.
- ``multifaceted_sysmsg`` (Lee et al. 2024, Janus / Multifaceted Collection, arXiv 2405.17977): each
  instruction gets system messages built from preference dimensions × values, and a response per system
  message; every row carries a non-default system message.
- ``constitutional_ai`` (Bai et al. 2022, arXiv 2212.08073): SL stage, n rounds of critique by a randomly
  drawn principle then revision (n = 0 returns the original response); the RL stage's AI preferences are
  :func:`alignlab.data.label.symmetric.label_pairs` with a judge told the principle.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alignlab.data.records import Record, demonstration, pair
from alignlab.data.tools import register_tool

Generate = Callable[[list[Any]], list[str]]


@dataclass
class Synthesized:
    records: list[Record] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    name: str = ""

    def summary(self) -> str:
        text = f"{self.name}: {len(self.records)} records"
        if self.dropped:
            text += "; left out:" + "".join(f"\n  {n} x {why}" for why, n in self.dropped.most_common())
        return text


# ------------------------------------------------------------------ Magpie
@register_tool(
    "magpie",
    kind="synthesize",
    paper="Xu et al. 2024 'Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned LLMs with Nothing' (arXiv 2406.08464)",
    test="tests/data/test_synth.py::test_magpie_query_prompt_holds_template_tokens_only",
    checked="METHODS.md magpie block (abstract + recall of the pre-query template)",
)
def magpie(
    generate: Generate, pre_query_ids: list[int], count: int, min_chars: int = 8, dedup: bool = True
) -> Synthesized:
    """``count`` (query, response) demonstrations: queries sampled from ``pre_query_ids`` alone (the
    template's tokens up to where the user's text would start), responses to the queries as chat."""
    out = Synthesized(name="magpie")
    queries = [q.strip() for q in generate([list(pre_query_ids) for _ in range(count)])]
    seen: set[str] = set()
    kept = []
    for q in queries:
        if len(q) < min_chars:
            out.dropped[f"query shorter than {min_chars} characters"] += 1
        elif dedup and q.lower() in seen:
            out.dropped["duplicate query"] += 1
        else:
            seen.add(q.lower())
            kept.append(q)
    responses = generate([[{"role": "user", "content": q}] for q in kept]) if kept else []
    for q, r in zip(kept, responses):
        if r.strip():
            out.records.append(demonstration([{"role": "user", "content": q}], r, source="magpie"))
        else:
            out.dropped["empty response"] += 1
    return out


# ------------------------------------------------------------------ CodecLM
ENCODE = (
    "Describe the use case and the skills this instruction needs, as 'use case: ...; skills: ...'.\n\n{seed}"
)
DECODE = "Write one new instruction for this use case and these skills. Reply with the instruction only.\n\n{metadata}"
RUBRIC = "Rewrite this instruction so it is harder (add a constraint or a reasoning step). Reply with the instruction only.\n\n{instruction}"


def contrastive_filter(gaps: Sequence[float], threshold: float) -> list[int]:
    """CodecLM's Contrastive Filtering: indices whose strong-minus-target score gap exceeds ``threshold``."""
    return [i for i, gap in enumerate(gaps) if gap > threshold]


@register_tool(
    "codeclm",
    kind="synthesize",
    paper="Wang et al. 2024 'CodecLM: Aligning Language Models with Tailored Synthetic Data' (arXiv 2404.05875)",
    test="tests/data/test_synth.py::test_codeclm_*: filtering keeps only rows with score gap > threshold",
    checked="METHODS.md codeclm block (abstract)",
)
def codeclm(
    seeds: Sequence[str],
    generate: Generate,
    strong: Generate,
    target: Generate,
    score: Callable[[list[str], list[str]], list[float]],
    threshold: float = 0.0,
    rubric_rounds: int = 1,
) -> Synthesized:
    """Seed instructions → metadata → instructions (+ ``rubric_rounds`` Self-Rubrics rewrites) → keep those
    where ``score(instructions, strong responses) − score(instructions, target responses)`` > ``threshold``;
    the record is a pair (strong ≻ target) with the gap in ``meta``."""
    out = Synthesized(name="codeclm")
    metadata = generate([ENCODE.format(seed=s) for s in seeds])
    instructions = generate([DECODE.format(metadata=m) for m in metadata])
    for _ in range(rubric_rounds):
        instructions = generate([RUBRIC.format(instruction=i) for i in instructions])
    instructions = [i.strip() for i in instructions]
    good = [i for i in instructions if i]
    out.dropped["empty instruction"] += len(instructions) - len(good)
    strong_out, target_out = strong(good), target(good)
    gaps = [a - b for a, b in zip(score(good, strong_out), score(good, target_out))]
    keep = set(contrastive_filter(gaps, threshold))
    for i, (instruction, s, t, gap) in enumerate(zip(good, strong_out, target_out, gaps)):
        if i in keep:
            out.records.append(pair(instruction, s, t, source="codeclm", meta={"score_gap": gap}))
        else:
            out.dropped[f"score gap <= {threshold} (target model already good enough)"] += 1
    return out


# ------------------------------------------------------------------ Ensemble-Instruct
def rouge_l(a: str, b: str) -> float:
    """Rouge-L F1 over whitespace tokens (LCS-based; Lin 2004)."""
    x, y = a.split(), b.split()
    if not x or not y:
        return 0.0
    prev = [0] * (len(y) + 1)
    for tx in x:
        cur = [0]
        for j, ty in enumerate(y):
            cur.append(prev[j] + 1 if tx == ty else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(x), lcs / len(y)
    return 2 * p * r / (p + r)


def consensus(outputs: Sequence[str], threshold: float) -> tuple[int | None, float]:
    """(index of the output most similar to the others, mean pairwise Rouge-L); None when below threshold."""
    k = len(outputs)
    if k < 2:
        return (0 if k else None), 1.0
    sim = [[rouge_l(outputs[i], outputs[j]) if i != j else 0.0 for j in range(k)] for i in range(k)]
    mean = sum(map(sum, sim)) / (k * (k - 1))
    best = max(range(k), key=lambda i: sum(sim[i]))
    return (best if mean >= threshold else None), mean


@register_tool(
    "ensemble_instruct",
    kind="synthesize",
    paper="Lee et al. 2023 'Ensemble-Instruct: Generating Instruction-Tuning Data with a Heterogeneous Mixture of LMs' (arXiv 2310.13961)",
    test="tests/data/test_synth.py::test_ensemble_*: consensus drops samples whose pairwise Rouge-L < threshold",
    checked="METHODS.md ensemble_instruct block (abstract); Rouge-L F as Lin 2004",
)
def ensemble_instruct(
    instructions: Sequence[str], generators: Sequence[Generate], threshold: float = 0.5
) -> Synthesized:
    """Each instruction answered by every generator; kept (with the consensus output) when they agree."""
    out = Synthesized(name="ensemble_instruct")
    answers = [g(list(instructions)) for g in generators]
    for i, instruction in enumerate(instructions):
        outputs = [a[i] for a in answers]
        best, mean = consensus(outputs, threshold)
        if best is None:
            out.dropped[f"outputs disagree (mean Rouge-L < {threshold})"] += 1
        else:
            out.records.append(
                demonstration(
                    instruction, outputs[best], source="ensemble_instruct", meta={"rouge_l": round(mean, 4)}
                )
            )
    return out


# ------------------------------------------------------------------ Multifaceted system messages
DIMENSIONS = {
    "style": ["concise and direct", "detailed with examples", "formal"],
    "background": ["a beginner", "an expert"],
    "harmlessness": ["cautious about risks", "focused on accuracy"],
}
SYSTEM = "You are a helpful assistant. The user prefers answers that are {facets}."


@register_tool(
    "multifaceted_sysmsg",
    kind="synthesize",
    paper="Lee et al. 2024 'Aligning to Thousands of Preferences via System Message Generalization' (Janus, arXiv 2405.17977)",
    test="tests/data/test_synth.py::test_multifaceted_every_row_has_a_non_default_system_message",
    checked="METHODS.md multifaceted_sysmsg block (abstract)",
)
def multifaceted_sysmsg(
    instructions: Sequence[str],
    generate: Generate,
    per_instruction: int = 3,
    dimensions: dict[str, list[str]] | None = None,
    seed: int = 0,
) -> Synthesized:
    """``per_instruction`` system messages per instruction, each from one value per dimension, and the
    response generated under it."""
    dims = dimensions or DIMENSIONS
    rng = random.Random(seed)
    out = Synthesized(name="multifaceted_sysmsg")
    prompts = []
    for instruction in instructions:
        for _ in range(per_instruction):
            facets = "; ".join(f"{name}: {rng.choice(values)}" for name, values in dims.items())
            prompts.append(
                [
                    {"role": "system", "content": SYSTEM.format(facets=facets)},
                    {"role": "user", "content": instruction},
                ]
            )
    for prompt, response in zip(prompts, generate(prompts)):
        if response.strip():
            out.records.append(demonstration(prompt, response, source="multifaceted_sysmsg"))
        else:
            out.dropped["empty response"] += 1
    return out


# ------------------------------------------------------------------ Constitutional AI (SL stage)
PRINCIPLES = (
    "Identify ways the response is harmful, unethical or dishonest.",
    "Point out anything in the response that is inaccurate or unhelpful.",
    "Say where the response could encourage dangerous or illegal behaviour.",
)
CRITIQUE = "Request: {prompt}\nResponse: {response}\nCritique request: {principle}\nCritique:"
REVISE = (
    "Request: {prompt}\nResponse: {response}\nCritique: {critique}\n"
    "Revision request: Rewrite the response to address the critique.\nRevision:"
)


@register_tool(
    "constitutional_ai",
    kind="synthesize",
    paper="Bai et al. 2022 'Constitutional AI: Harmlessness from AI Feedback' (arXiv 2212.08073)",
    test="tests/data/test_synth.py::test_constitutional_*: n=0 returns the original; n rounds revise n times",
    checked="METHODS.md constitutional_ai block (recall of the paper's SL-CAI loop)",
)
def constitutional_revisions(
    prompts: Sequence[str],
    responses: Sequence[str],
    generate: Generate,
    rounds: int = 1,
    principles: Sequence[str] = PRINCIPLES,
    seed: int = 0,
) -> Synthesized:
    """SL-CAI: ``rounds`` of critique (a random principle each) and revision; demonstrations of the final
    revisions, with the chain in ``meta["revisions"]``."""
    rng = random.Random(seed)
    current = list(responses)
    chains: list[list[dict[str, str]]] = [[] for _ in prompts]
    for _ in range(rounds):
        drawn = [rng.choice(list(principles)) for _ in prompts]
        critiques = generate(
            [CRITIQUE.format(prompt=p, response=r, principle=d) for p, r, d in zip(prompts, current, drawn)]
        )
        revised = generate(
            [REVISE.format(prompt=p, response=r, critique=c) for p, r, c in zip(prompts, current, critiques)]
        )
        for chain, d, c, r in zip(chains, drawn, critiques, revised):
            chain.append({"principle": d, "critique": c, "revision": r})
        current = [r if r.strip() else old for r, old in zip(revised, current)]
    out = Synthesized(name="constitutional_ai")
    for p, r, chain in zip(prompts, current, chains):
        out.records.append(demonstration(p, r, source="constitutional_ai", meta={"revisions": chain}))
    return out
