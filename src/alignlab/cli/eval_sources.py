"""The ``alignlab eval`` subcommands that gather their own evidence: ``policies`` (generate or read outputs, judge,
win rates), ``humans`` (the same with people voting in the feedback app), ``feedback`` (the data itself) and ``run``
(over-optimisation curves from a run's checkpoints). :mod:`alignlab.cli.eval` mounts them on its group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from alignlab.cli.eval_output import console, emit


def _judge_spec(text: str) -> Any:
    import yaml

    from alignlab.config import ConfigError

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--judge {text!r} is neither a judge name nor a YAML mapping ({err})") from None
    return spec


def _build_judge(text: str) -> Any:
    from alignlab.config import ConfigError
    from alignlab.judges.build import build_judge
    from alignlab.judges.registry import JudgeConfigError

    try:
        return build_judge(_judge_spec(text), where="--judge")
    except JudgeConfigError as err:
        raise ConfigError(str(err)) from None


def _prompts(path: str, limit: int | None) -> list[Any]:
    """The prompt records of ``--prompts``; a missing or malformed file is a one-line error, not a traceback."""
    from alignlab.config import ConfigError
    from alignlab.data.prompts import PromptSetError, load_prompts

    try:
        return load_prompts(path, limit)
    except PromptSetError as err:
        raise ConfigError(f"--prompts: {err}") from None


def _system(
    source: str, prompts: list[Any] | None, tokens: int, temperature: float, seed: int
) -> list[tuple[Any, Any]]:
    """(prompt, output) rows: an outputs JSONL as is, or a model's generations for ``prompts``."""
    from alignlab.config import ConfigError
    from alignlab.eval.policy_eval import generate_outputs, read_outputs

    if source.endswith(".jsonl"):
        return read_outputs(source)
    if prompts is None:
        raise ConfigError(
            f"{source} is a model: give --prompts to generate its outputs (or pass an outputs .jsonl)"
        )
    return list(zip(prompts, generate_outputs(source, prompts, tokens, temperature, seed)))


def policies(
    model: str = typer.Option(
        ..., "--model", help="A model (run dir, model folder, tiny:ARCH) or an outputs .jsonl."
    ),
    baseline: str = typer.Option(..., "--baseline", help="The baseline: a model or an outputs .jsonl."),
    judge: str = typer.Option(
        ..., "--judge", help="Judge spec: a name or YAML, e.g. '{name: reward_model, path: runs/rm}'."
    ),
    prompts: str | None = typer.Option(
        None, "--prompts", help="Prompts (JSONL with 'prompt', or builtin:NAME) to generate from."
    ),
    metric: str = typer.Option(
        "winrate,lc_winrate", "--metric", help="Comma-separated: winrate, lc_winrate."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N prompts."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
    temperature: float = typer.Option(1.0, "--temperature"),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(
        None, "--out", help="Write both systems' outputs and the verdicts here (JSONL)."
    ),
    on_invalid: str = typer.Option(
        "raise",
        "--on-invalid",
        help="Mismatched prompts, empty outputs, invalid verdicts: raise or skip (counted).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Win rate (and length-controlled win rate) of MODEL against BASELINE under a judge, with uncertainty."""
    import json

    from alignlab.eval.lc_winrate import lc_winrate
    from alignlab.eval.policy_eval import judge_verdicts, match_outputs
    from alignlab.eval.registry import MetricError
    from alignlab.eval.winrate import winrate

    names = [m.strip() for m in metric.split(",") if m.strip()]
    unknown = sorted(set(names) - {"winrate", "lc_winrate"})
    if unknown:
        raise MetricError(
            f"--metric: eval policies computes winrate and lc_winrate, not {', '.join(unknown)}"
        )
    rows = [r.prompt for r in _prompts(prompts, limit)] if prompts else None
    matched = match_outputs(
        _system(model, rows, max_new_tokens, temperature, seed),
        _system(baseline, rows, max_new_tokens, temperature, seed + 1),
        on_invalid,
    )
    verdicts = judge_verdicts(_build_judge(judge), matched.prompts, matched.model, matched.baseline, seed)
    results = {}
    if "winrate" in names:
        results["winrate"] = winrate(verdicts=verdicts.tolist(), on_invalid=on_invalid)
    if "lc_winrate" in names:
        results["lc_winrate"] = lc_winrate(
            verdicts=verdicts.tolist(),
            model_outputs=matched.model,
            baseline_outputs=matched.baseline,
            on_invalid=on_invalid,
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            for p, m, b, v in zip(matched.prompts, matched.model, matched.baseline, verdicts):
                f.write(
                    json.dumps({"prompt": p, "output": m, "baseline_output": b, "verdict": float(v)}) + "\n"
                )
    emit(
        results,
        matched.notes,
        as_json,
        report,
        title=f"{model} against {baseline} ({len(verdicts)} prompts)",
        extra={"model": model, "baseline": baseline, "prompts": len(verdicts)},
    )


def humans(
    url: str = typer.Option(..., "--url", help="The feedback app, e.g. http://127.0.0.1:8000."),
    project: int = typer.Option(
        ..., "--project", help="The project whose judge token is in ALIGNLAB_JUDGE_TOKEN."
    ),
    model: str = typer.Option(..., "--model", help="Outputs .jsonl of the model."),
    baseline: str = typer.Option(..., "--baseline", help="Outputs .jsonl of the baseline."),
    wait: float = typer.Option(3600.0, "--wait", help="Seconds to wait for the votes."),
    seed: int = typer.Option(0, "--seed"),
    on_invalid: str = typer.Option(
        "raise", "--on-invalid", help="Pairs without votes, mismatched prompts: raise or skip (counted)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Win rate judged by people in the feedback app, with annotator agreement (admin token: ALIGNLAB_ADMIN_TOKEN)."""
    from alignlab.config import ConfigError
    from alignlab.eval.human_eval import agreement, fetch_votes, human_win_rate
    from alignlab.eval.policy_eval import match_outputs, read_outputs
    from alignlab.judges.human import HumanJudge

    token, admin = os.environ.get("ALIGNLAB_JUDGE_TOKEN"), os.environ.get("ALIGNLAB_ADMIN_TOKEN")
    if not token:
        raise ConfigError(
            "ALIGNLAB_JUDGE_TOKEN is not set: create one with `alignlab app judge-token PROJECT`"
        )
    matched = match_outputs(read_outputs(model), read_outputs(baseline), on_invalid)
    with HumanJudge(url, token, wait_timeout=wait, poll_every=1.0, on_timeout="nan") as judge:
        results = {
            "winrate": human_win_rate(
                judge, matched.prompts, matched.model, matched.baseline, seed, on_invalid
            )
        }
    notes = list(matched.notes)
    if admin:
        results["agreement"] = agreement(fetch_votes(url, admin, project))
    else:
        notes.append("agreement not computed: set ALIGNLAB_ADMIN_TOKEN to read the project's votes")
    emit(results, notes, as_json, report, title=f"people judging {model} against {baseline}")


def feedback(
    data: str = typer.Option(..., "--data", help="Preference data (a file, a datasets folder or a hub id)."),
    encoder: str = typer.Option(
        "tiny:llama", "--encoder", help="Frozen encoder for embeddings (hub id, folder, tiny:ARCH)."
    ),
    metric: str = typer.Option(
        "multimodel_separability,wimhf", "--metric", help="Comma-separated: multimodel_separability, wimhf."
    ),
    format: str = typer.Option("auto", "--format"),
    limit: int | None = typer.Option(None, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Diagnostics of feedback data: linear separability of chosen vs rejected and what predicts the labels."""
    from alignlab.data.io import load_records
    from alignlab.eval.feedback_metrics import multimodel_separability
    from alignlab.eval.registry import MetricError
    from alignlab.eval.rm_metrics import pairs_of
    from alignlab.eval.wimhf import wimhf
    from alignlab.models.embedding import embed_texts

    records, loaded = load_records(data, format=format)
    records = records[:limit] if limit else records
    _, chosen, rejected, _ = pairs_of(records)
    emb = embed_texts(chosen + rejected, encoder).numpy()
    c, r = emb[: len(chosen)], emb[len(chosen) :]
    results, notes = {}, [loaded.summary()] if loaded.skipped else []
    for name in [m.strip() for m in metric.split(",") if m.strip()]:
        if name == "multimodel_separability":
            results[name] = multimodel_separability(chosen_embeddings=c, rejected_embeddings=r)
        elif name == "wimhf":
            lengths = [len(a) - len(b) for a, b in zip(chosen, rejected)]
            results[name] = wimhf(
                chosen_embeddings=c, rejected_embeddings=r, attributes={"length_difference": lengths}
            )
        else:
            raise MetricError(
                f"--metric: eval feedback computes multimodel_separability and wimhf, not '{name}' "
                "(rating_ranking_consistency reads a table: alignlab eval compute)"
            )
    emit(results, notes, as_json, report, title=f"feedback {data} ({len(chosen)} pairs)")


def run(
    run_dir: Path = typer.Argument(..., help="A run directory with checkpoints/step-N/."),
    prompts: str = typer.Option(
        ..., "--prompts", help="Prompts to sample (JSONL with 'prompt', or builtin:NAME)."
    ),
    gold: str = typer.Option(..., "--gold", help="Gold judge spec (name or YAML)."),
    proxy: str | None = typer.Option(
        None, "--proxy", help="Proxy judge spec (the reward the run optimised)."
    ),
    init: str | None = typer.Option(
        None, "--init", help="The initial model (default: model.path of RUN/config.yaml)."
    ),
    samples: int = typer.Option(4, "--samples", help="Samples per prompt and checkpoint."),
    limit: int | None = typer.Option(None, "--limit"),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Gold (and proxy) reward against √KL over a run's checkpoints, with Gao et al.'s RL form fitted."""
    from alignlab.eval.run_curves import checkpoints, run_curves

    checkpoints(run_dir)  # a run without checkpoints stops here, before any model is loaded
    rows = [r.prompt for r in _prompts(prompts, limit)]
    result, table = run_curves(
        run_dir,
        rows,
        _build_judge(gold),
        _build_judge(proxy) if proxy else None,
        init,
        samples,
        max_new_tokens,
    )
    emit(
        {"overopt_curves": result},
        [],
        as_json,
        report,
        title=f"over-optimisation of {run_dir}",
        extra={"checkpoints": table},
    )
    if not as_json:
        for row in table:
            console.print(
                f"step {row['step']}: KL {row['kl']:.4g} ± {row['kl_se']:.2g}, gold {row['gold']:.4g} ± {row['gold_se']:.2g}"
                + (f", proxy {row['proxy']:.4g} ± {row['proxy_se']:.2g}" if "proxy" in row else ""),
                highlight=False,
            )


MODEL_METRICS = ("topk_overopt_indicators", "token_distribution_shift", "ches", "likelihood_displacement")


def model(
    model: str = typer.Option(
        ..., "--model", help="The (aligned, trained) model: run dir, model folder or tiny:ARCH."
    ),
    metric: str = typer.Option(..., "--metric", help="Comma-separated: " + ", ".join(MODEL_METRICS) + "."),
    base: str | None = typer.Option(
        None,
        "--base",
        help="The base / pre-training model (token_distribution_shift, likelihood_displacement).",
    ),
    prompts: str | None = typer.Option(
        None, "--prompts", help="Prompts to sample (topk_overopt_indicators, token_distribution_shift)."
    ),
    data: str | None = typer.Option(None, "--data", help="Labelled pairs (ches, likelihood_displacement)."),
    k: int = typer.Option(10, "--k", help="k of the top-k indicators."),
    limit: int | None = typer.Option(None, "--limit"),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Token-level diagnostics of a model: top-k indicators, token shift from its base, CHES, likelihood displacement."""
    from alignlab.config import ConfigError
    from alignlab.eval import model_eval as me
    from alignlab.eval.rm_metrics import pairs_of
    from alignlab.eval.saved_policy import load_policy

    names = [m.strip() for m in metric.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODEL_METRICS))
    if unknown:
        raise ConfigError(
            f"--metric: eval model computes {', '.join(MODEL_METRICS)}, not {', '.join(unknown)}"
        )
    needs_base = {"token_distribution_shift", "likelihood_displacement"} & set(names)
    needs_prompts = {"topk_overopt_indicators", "token_distribution_shift"} & set(names)
    needs_data = {"ches", "likelihood_displacement"} & set(names)
    for needed, flag, value in (
        (needs_base, "--base", base),
        (needs_prompts, "--prompts", prompts),
        (needs_data, "--data", data),
    ):
        if needed and value is None:
            raise ConfigError(f"{', '.join(sorted(needed))} need {flag}")
    policy, tokenizer = load_policy(model)
    reference = load_policy(base)[0] if base else None
    rows = [r.prompt for r in _prompts(prompts, limit)] if prompts else []
    pair_prompts: list[Any] = []
    chosen: list[str] = []
    rejected: list[str] = []
    if data:
        from alignlab.data.io import load_records

        records, _ = load_records(data)
        pair_prompts, chosen, rejected, _ = pairs_of(records[:limit] if limit else records)
    results = {}
    for name in names:
        if name == "topk_overopt_indicators":
            results[name] = me.topk_from_model(policy, tokenizer, rows, k, max_new_tokens, seed)
        elif name == "token_distribution_shift":
            results[name] = me.shift_from_models(policy, reference, tokenizer, rows, max_new_tokens, seed)
        elif name == "ches":
            results[name] = me.ches_from_model(policy, tokenizer, pair_prompts, chosen, rejected)
        else:
            results[name] = me.displacement_from_models(
                reference, policy, tokenizer, pair_prompts, chosen, rejected
            )
    emit(results, [], as_json, report, title=f"token diagnostics of {model}")


def _ratings(path: Path) -> dict[str, float]:
    import json

    from alignlab.config import ConfigError

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"--reference {path}: cannot read it as JSON ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ConfigError(f'--reference {path}: expected a JSON object {{"system": rating, ...}}')
    return {str(k): float(v) for k, v in data.items()}


def arena(
    outputs: list[str] = typer.Option(
        ..., "--outputs", help="NAME=FILE.jsonl of one system's outputs; repeat for each system."
    ),
    judge: str = typer.Option(..., "--judge", help="Judge spec (name or YAML)."),
    seed: int = typer.Option(0, "--seed"),
    rounds: int = typer.Option(200, "--rounds", help="Bootstrap resamples of the matches."),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="JSON {system: rating} (e.g. elo_bt ratings): adds Spearman's ρ with its interval.",
    ),
    on_invalid: str = typer.Option(
        "raise", "--on-invalid", help="Prompts not answered by every system: raise or skip (counted)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
) -> None:
    """Varco Arena: single-elimination tournaments per prompt among several systems, rated by Bradley–Terry."""
    from alignlab.config import ConfigError
    from alignlab.eval.inputs import invalid_report
    from alignlab.eval.policy_eval import prompt_key, read_outputs
    from alignlab.eval.tournament import varco_arena

    systems: dict[str, dict[str, tuple[Any, Any]]] = {}
    for item in outputs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--outputs {item!r}: expected NAME=FILE.jsonl")
        systems[name] = {prompt_key(p): (p, o) for p, o in read_outputs(path)}
    if len(systems) < 2:
        raise ConfigError("give --outputs for at least two systems")
    first = next(iter(systems.values()))
    notes: list[str] = []
    every = [k for k in first if all(k in s for s in systems.values())]
    bad = {i: "not answered by every system" for i, k in enumerate(first) if k not in set(every)}
    invalid_report("prompts", bad, len(first), on_invalid, notes)
    result = varco_arena(
        prompts=[first[k][0] for k in every],
        outputs={name: [s[k][1] for k in every] for name, s in systems.items()},
        judge=_build_judge(judge),
        seed=seed,
        rounds=rounds,
        reference=_ratings(reference) if reference else None,
    )
    emit(
        {"varco_arena": result},
        notes,
        as_json,
        report,
        title=f"arena of {', '.join(systems)} on {len(every)} prompts",
    )
