"""A policy against a baseline (``alignlab eval policies``): outputs (generated, or read from JSONL), matched by
prompt, judged with the two sides in a seeded random order, then ``winrate`` and ``lc_winrate``.

Outputs files hold one ``{"prompt": ..., "output": ...}`` object per line. Prompts that only one system answered,
prompts answered twice by one system and empty outputs are reported by record with their count (``on_invalid``:
raise, or skip and note); nothing is dropped silently.

Position bias: AlpacaEval shows the two outputs in a random order. Here prompt i's pair is judged as (model,
baseline) when a seeded coin says so, else as (baseline, model) with p_i = 1 − P(baseline ≻ model). A judge
without scalar scores (an LM asked "A or B?") is asked in both orders instead, p_i = ½ [P(model ≻ baseline |
model first) + 1 − P(baseline ≻ model | baseline first)] (RLAIF's debiasing, Lee et al. 2023 §2.1.1): its
position bias then cancels in every pair instead of on average, which removes that noise from the win rate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.eval.inputs import invalid_report, json_lines
from alignlab.eval.registry import MetricError
from alignlab.eval.saved_policy import sample_once


@dataclass
class Matched:
    prompts: list[Any]
    model: list[str]
    baseline: list[str]
    notes: list[str] = field(default_factory=list)


def prompt_key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def read_outputs(path: str | Path) -> list[tuple[Any, Any]]:
    """(prompt, output) per line of an outputs JSONL; a bad line is an error naming the file and line."""
    path = Path(path)
    rows = []
    for line_no, row, line in json_lines(path, "outputs file"):
        if not isinstance(row, dict) or "prompt" not in row or "output" not in row:
            raise MetricError(
                f'{path}:{line_no}: expected {{"prompt": ..., "output": ...}}, got {line[:80]!r}'
            )
        rows.append((row["prompt"], row["output"]))
    if not rows:
        raise MetricError(f"{path}: no outputs")
    return rows


def match_outputs(
    model_rows: Sequence[tuple[Any, Any]],
    baseline_rows: Sequence[tuple[Any, Any]],
    on_invalid: str = "raise",
    names: tuple[str, str] = ("model", "baseline"),
) -> Matched:
    """Pair the two systems' outputs by prompt (model order), reporting mismatches, duplicates and empty outputs."""
    notes: list[str] = []
    tables = []
    for name, rows in zip(names, (model_rows, baseline_rows)):
        table: dict[str, tuple[Any, Any]] = {}
        dupes = {}
        for i, (prompt, output) in enumerate(rows):
            key = prompt_key(prompt)
            if key in table:
                dupes[i] = f"prompt answered twice by the {name}"
            else:
                table[key] = (prompt, output)
        invalid_report(f"{name} outputs", dupes, len(rows), on_invalid, notes)
        tables.append(table)
    model_t, base_t = tables
    only_model = {
        i: f"prompt missing from the {names[1]} outputs" for i, k in enumerate(model_t) if k not in base_t
    }
    only_base = {
        i: f"prompt missing from the {names[0]} outputs" for i, k in enumerate(base_t) if k not in model_t
    }
    invalid_report(f"{names[0]} prompts", only_model, len(model_t), on_invalid, notes)
    invalid_report(f"{names[1]} prompts", only_base, len(base_t), on_invalid, notes)
    keys = [k for k in model_t if k in base_t]
    empty = {}
    for i, k in enumerate(keys):
        for name, table in zip(names, (model_t, base_t)):
            out = table[k][1]
            if not isinstance(out, str) or not out.strip():
                empty[i] = f"empty {name} output"
    drop = invalid_report("matched prompts", empty, len(keys), on_invalid, notes)
    keys = [k for i, k in enumerate(keys) if i not in drop]
    if not keys:
        raise MetricError(f"no prompt has outputs from both the {names[0]} and the {names[1]}")
    return Matched(
        [model_t[k][0] for k in keys], [model_t[k][1] for k in keys], [base_t[k][1] for k in keys], notes
    )


def judge_verdicts(
    judge: Any,
    prompts: Sequence[Any],
    model: Sequence[str],
    baseline: Sequence[str],
    seed: int = 0,
    both_orders: bool = False,
    notes: list[str] | None = None,
) -> np.ndarray:
    """p_i = P(model ≻ baseline), each pair shown in a seeded random order, or in both orders averaged
    (``both_orders``; the position bias then goes to ``notes``) (module docstring)."""
    if both_orders:
        from alignlab.eval.rm_metrics import preference_both_orders

        return preference_both_orders(judge, list(prompts), list(model), list(baseline), notes)
    first = np.random.default_rng(seed).random(len(prompts)) < 0.5
    a = [m if f else b for m, b, f in zip(model, baseline, first)]
    b = [b if f else m for m, b, f in zip(model, baseline, first)]
    p = np.asarray(judge.prefer_many(list(prompts), a, b), dtype=float)
    return np.where(first, p, 1.0 - p)


def has_scores(judge: Any) -> bool:
    """Whether ``judge`` gives scalar scores (σ(s_a − s_b) is then the same in either order)."""
    from alignlab.judges.base import Judge

    return type(judge).score is not Judge.score


def generate_outputs(
    model_path: str, prompts: Sequence[Any], max_new_tokens: int, temperature: float, seed: int
) -> list[str]:
    """One completion per prompt from a saved model (a run directory's model/, a checkpoint, tiny:ARCH)."""
    return sample_once(model_path, prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
