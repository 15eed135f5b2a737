"""``alignlab eval just-eval``: Just-Eval-Instruct scores of a system's outputs from a generative judge model
(:mod:`alignlab.eval.just_eval_judge`). :mod:`alignlab.cli.eval` mounts it on its group."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from alignlab.cli.eval_output import emit


def just_eval(
    outputs: Path = typer.Option(
        ..., "--outputs", help='JSONL: {"prompt": ..., "output": ..., "id" (optional)} per line.'
    ),
    judge_model: str = typer.Option(
        ..., "--judge-model", help="The judge: a saved model or run dir, builtin:NAME or tiny:ARCH."
    ),
    safety: bool = typer.Option(False, "--safety", help="Also score the safety aspect."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N records."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Longest judge reply."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy judge."),
    seed: int = typer.Option(0, "--seed"),
    replies: Path | None = typer.Option(
        None,
        "--replies",
        help="Write each record's judge reply (and its scores or parse error) here (JSONL).",
    ),
    on_invalid: str = typer.Option(
        "raise",
        "--on-invalid",
        help="Unparsable replies, empty outputs: raise or skip (counted, named by id).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Score OUTPUTS 1–5 on helpfulness, clarity, factuality, depth, engagement (and safety) with a judge model."""
    from alignlab.eval.just_eval import ASPECTS, SAFETY, parse_scores
    from alignlab.eval.just_eval_judge import read_judge_inputs, run_just_eval

    inputs = read_judge_inputs(outputs, on_invalid=on_invalid, limit=limit)
    result, texts, error = run_just_eval(
        judge_model,
        inputs,
        safety=safety,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        on_invalid=on_invalid,
    )
    if replies is not None:
        aspects = ASPECTS + ((SAFETY,) if safety else ())
        replies.parent.mkdir(parents=True, exist_ok=True)
        with replies.open("w", encoding="utf-8") as f:
            for rid, prompt, output, text in zip(inputs.ids, inputs.prompts, inputs.responses, texts):
                row = {"id": rid, "prompt": prompt, "output": output, "reply": text}
                try:
                    row["scores"] = parse_scores(text, aspects)
                except ValueError as err:
                    row["error"] = str(err)
                f.write(json.dumps(row) + "\n")
    if error is not None:
        raise error
    assert result is not None
    emit(
        {"just_eval_instruct": result}, [], as_json, report, title=f"Just-Eval of {outputs} by {judge_model}"
    )
