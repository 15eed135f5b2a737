"""The ``alignlab eval`` subcommands that read their evidence from data, runs and saved models: ``feedback``
(the data itself), ``run`` (over-optimisation curves from a run's checkpoints), ``model`` (token diagnostics
of a saved policy) and ``arena`` (tournaments of many systems' outputs). :mod:`alignlab.cli.eval` mounts them
(``policies`` and ``humans`` are in ``eval_policies.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from alignlab.cli.eval_options import judge_option, prompt_rows
from alignlab.cli.eval_output import console, emit


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
    rows = [r.prompt for r in prompt_rows(prompts, limit)]
    result, table = run_curves(
        run_dir,
        rows,
        judge_option(gold),
        judge_option(proxy) if proxy else None,
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
    rows = [r.prompt for r in prompt_rows(prompts, limit)] if prompts else []
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
        judge=judge_option(judge),
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
