"""Over-optimisation curves of a training run (``alignlab eval run``): for the initial model and every checkpoint
of RUN/checkpoints/step-N, sample completions of the prompts at temperature 1, estimate KL(π_step ‖ π_init) from
those samples (:func:`alignlab.eval.kl.rollout_kl`, with its SE), score them with the gold (and proxy) judge, then
fit Gao et al.'s RL form with ``overopt_curves``.

π_init is the run's ``model.path`` in RUN/config.yaml (the model training started from), or ``--init``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alignlab.eval.kl import rollout_kl
from alignlab.eval.overopt import overopt_curves
from alignlab.eval.registry import MetricError
from alignlab.eval.uncertainty import MetricResult, mean_estimate


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint of a run, by step; a clear error when there are none."""
    run = Path(run_dir)
    if not run.is_dir():
        raise MetricError(f"{run}: no such run directory")
    folder = run / "checkpoints"
    found = []
    if folder.is_dir():
        for child in folder.iterdir():
            match = re.fullmatch(r"step-(\d+)", child.name)
            if match and (child / "config.json").exists():
                found.append((int(match.group(1)), child))
    if not found:
        raise MetricError(
            f"{run} has no checkpoints (expected {folder}/step-N/ folders with config.json); train with "
            "train.save_every set so that the run keeps checkpoints, or point at a run that has them"
        )
    return sorted(found)


def initial_model(run_dir: str | Path) -> str:
    config = Path(run_dir) / "config.yaml"
    if not config.exists():
        raise MetricError(f"{config}: no config.yaml; give the initial model with --init")
    data = yaml.safe_load(config.read_text()) or {}
    path = (data.get("model") or {}).get("path")
    if not path:
        raise MetricError(f"{config}: no model.path; give the initial model with --init")
    return str(path)


def _load(path: str) -> tuple[Any, Any]:
    from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

    settings = ModelSettings(path=path, kind="causal_lm")
    return load_causal_lm(settings, for_training=False), load_tokenizer(settings)


def run_curves(
    run_dir: str | Path,
    prompts: Sequence[Any],
    gold: Any,
    proxy: Any | None = None,
    init: str | None = None,
    samples: int = 4,
    max_new_tokens: int = 32,
    seed: int = 0,
) -> tuple[MetricResult, list[dict[str, Any]]]:
    """(the fitted ``overopt_curves`` result, one row per model: step, KL ± SE, gold ± SE, proxy ± SE)."""
    from alignlab.generation import SamplingParams, build_sampler

    steps = checkpoints(run_dir)
    init_path = init or initial_model(run_dir)
    reference, tokenizer = _load(init_path)
    params = SamplingParams(n=samples, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed)
    rows = []
    for step, path in [(0, None), *steps]:
        policy = reference if path is None else _load(str(path))[0]
        rollouts = build_sampler("hf", policy, tokenizer).sample(list(prompts), params)
        texts = [r.text for r in rollouts]
        owners = [prompts[r.prompt_index] for r in rollouts]
        kl, kl_se = (
            (0.0, 0.0)
            if path is None
            else rollout_kl(policy, reference, rollouts, pad_id=tokenizer.pad_token_id or 0)
        )
        row: dict[str, Any] = {"step": step, "kl": kl, "kl_se": kl_se}
        for name, judge in (("gold", gold), ("proxy", proxy)):
            if judge is None:
                continue
            values = np.asarray(judge.score(owners, texts), dtype=float)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise MetricError(
                    f"the {name} judge gave {bad.size} NaN/infinite rewards at step {step} (samples {bad[:10].tolist()})"
                )
            est = mean_estimate(values)
            row[name], row[f"{name}_se"] = est.value, est.se
        rows.append(row)
    kl_values = [max(r["kl"], 0.0) for r in rows]
    result = overopt_curves(
        kl=kl_values,
        gold=[r["gold"] for r in rows],
        proxy=[r["proxy"] for r in rows] if proxy is not None else None,
        form="rl",
    )
    result.details["checkpoints"] = rows
    negative = [r["step"] for r in rows if r["kl"] < 0]
    if negative:
        result.notes.append(f"KL estimates below 0 (sampling noise) set to 0 at steps {negative}")
    return result, rows
