"""Just-Eval-Instruct with a generative judge: (prompt, response) records → the Just-Eval judge request
(``just_eval_prompt``, sent as one user message so a chat model's template applies) → replies sampled from a judge
model through ``alignlab.generation.build_sampler`` → ``just_eval_instruct`` (1–5 per aspect, parsed and
averaged with standard errors; unparsable replies counted and named by record id).

The judge is any causal LM alignlab loads: a saved model or run directory, ``builtin:NAME``, or ``tiny:ARCH``
(a tiny random model only exercises the plumbing: its replies are not JSON and are reported as unparsable).
Greedy decoding (temperature 0) by default, as judges are usually run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from alignlab.eval.inputs import invalid_report, json_lines
from alignlab.eval.just_eval import just_eval_instruct, just_eval_prompt
from alignlab.eval.registry import MetricError
from alignlab.eval.saved_policy import sample_once
from alignlab.eval.uncertainty import MetricResult


@dataclass
class JudgeInputs:
    """Records to judge: ``ids[i]`` names record i (its ``id`` field, else ``line N`` of the file)."""

    ids: list[str]
    prompts: list[Any]
    responses: list[str]
    notes: list[str] = field(default_factory=list)


def read_judge_inputs(path: str | Path, on_invalid: str = "raise", limit: int | None = None) -> JudgeInputs:
    """``{"prompt": ..., "output": ..., "id"?: ...}`` per line (the first ``limit`` records); bad lines are errors
    naming the file and line, empty outputs are reported by record id (raise, or skip and note)."""
    path = Path(path)
    ids, prompts, responses = [], [], []
    # islice stops before parsing the line after the limit, so a broken line past it is never read.
    stop = None if limit is None else max(limit, 0)
    for line_no, row, line in islice(json_lines(path, "outputs file"), stop):
        if not isinstance(row, dict) or "prompt" not in row or "output" not in row:
            raise MetricError(
                f'{path}:{line_no}: expected {{"prompt": ..., "output": ..., "id" (optional)}}, got {line[:80]!r}'
            )
        ids.append(str(row.get("id", f"line {line_no}")))
        prompts.append(row["prompt"])
        responses.append(row["output"])
    if not ids:
        raise MetricError(f"{path}: no records")
    return drop_empty(JudgeInputs(ids, prompts, responses), on_invalid)


def drop_empty(inputs: JudgeInputs, on_invalid: str) -> JudgeInputs:
    """Leave out (or stop at) records whose response is empty or not text, naming them by id."""
    bad = {
        i: "empty output" for i, r in enumerate(inputs.responses) if not isinstance(r, str) or not r.strip()
    }
    notes = list(inputs.notes)
    drop = invalid_report("outputs", bad, len(inputs.ids), on_invalid, notes, labels=inputs.ids)
    keep = [i for i in range(len(inputs.ids)) if i not in drop]
    if not keep:
        raise MetricError("no record has a non-empty output to judge")
    return JudgeInputs(
        [inputs.ids[i] for i in keep],
        [inputs.prompts[i] for i in keep],
        [inputs.responses[i] for i in keep],
        notes,
    )


def instruction_text(prompt: Any) -> str:
    """The instruction shown to the judge: the prompt text, or a conversation's turns as ``role: content``."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(t, dict) for t in prompt):
        return "\n".join(f"{t.get('role', 'user')}: {t.get('content', '')}" for t in prompt)
    return json.dumps(prompt)


def sample_judge_replies(
    judge_model: str,
    prompts: Sequence[Any],
    responses: Sequence[str],
    *,
    safety: bool = False,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    seed: int = 0,
    backend: str = "hf",
) -> list[str]:
    """The judge model's reply to each Just-Eval request, in record order."""
    requests = [
        [{"role": "user", "content": just_eval_prompt(instruction_text(p), r, safety=safety)}]
        for p, r in zip(prompts, responses)
    ]
    return sample_once(
        judge_model,
        requests,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        backend=backend,
    )


def run_just_eval(
    judge_model: str,
    inputs: JudgeInputs,
    *,
    safety: bool = False,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    seed: int = 0,
    on_invalid: str = "raise",
) -> tuple[MetricResult | None, list[str], MetricError | None]:
    """(result, replies, error): the replies always come back (to save or inspect), the error when none of
    them parse or ``on_invalid='raise'`` meets an unparsable one."""
    replies = sample_judge_replies(
        judge_model,
        inputs.prompts,
        inputs.responses,
        safety=safety,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
    )
    try:
        result = just_eval_instruct(
            judge_outputs=replies, ids=inputs.ids, safety=safety, on_invalid=on_invalid
        )
    except MetricError as err:
        return None, replies, MetricError("; ".join([str(err), *inputs.notes]))
    result.notes[:0] = inputs.notes
    return result, replies, None
