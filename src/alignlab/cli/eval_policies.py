"""``alignlab eval policies`` (generate or read two systems' outputs, judge them, win rates) and ``alignlab
eval humans`` (the same with people voting in the feedback app). :mod:`alignlab.cli.eval` mounts them."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from alignlab.cli.eval_options import judge_option, prompt_rows, system_outputs
from alignlab.cli.eval_output import emit


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
    from alignlab.eval.policy_eval import has_scores, judge_verdicts, match_outputs
    from alignlab.eval.registry import MetricError
    from alignlab.eval.winrate import winrate

    names = [m.strip() for m in metric.split(",") if m.strip()]
    unknown = sorted(set(names) - {"winrate", "lc_winrate"})
    if unknown:
        raise MetricError(
            f"--metric: eval policies computes winrate and lc_winrate, not {', '.join(unknown)}"
        )
    rows = [r.prompt for r in prompt_rows(prompts, limit)] if prompts else None
    matched = match_outputs(
        system_outputs(model, rows, max_new_tokens, temperature, seed),
        system_outputs(baseline, rows, max_new_tokens, temperature, seed + 1),
        on_invalid,
    )
    built = judge_option(judge)
    verdicts = judge_verdicts(
        built,
        matched.prompts,
        matched.model,
        matched.baseline,
        seed,
        both_orders=not has_scores(built),
        notes=matched.notes,
    )
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
