"""The quickstart's report: a verdict sentence with its uncertainty, then the evidence, each figure with a
sentence that says what it shows (computed from the numbers, so the words change when the numbers do).

Every ± in the report is a standard error and says so. The over-optimisation section shows two best-of-n
curves: the quickstart's own reward model (whose budget, n ≤ 16, may not reach the turn) and the
``overoptimisation`` claim of ``alignlab sim reproduce`` (a proxy reward model pushed to n = 64, where gold
reward falls while the proxy keeps rising).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alignlab.eval import plots
from alignlab.eval.report import embed_png, table_html, write_report

LN2 = math.log(2)
# Trained with a pairwise logistic loss: chance level is ln 2 (the loss of a model that cannot tell the two apart).
PAIRWISE_STAGES = ("reward_model", "dpo")


def verdict(win_rate: float, se: float, n: int) -> tuple[str, str]:
    """(one sentence, "worked" / "worse" / "unclear") from DPO's win rate against SFT (%) and its standard
    error: a difference from 50% of two standard errors or more is called an effect."""
    z = (win_rate - 50.0) / se if se > 0 else float("inf") * (win_rate - 50.0)
    figure = f"{win_rate:.1f}% ± {se:.1f} (standard error) of {n} held-out comparisons"
    if z >= 2:
        return f"Alignment worked: DPO's answers beat SFT's in {figure}, against 50% for no change.", "worked"
    if z <= -2:
        return f"Alignment made answers worse: DPO's answers beat SFT's in only {figure}.", "worse"
    return (
        f"No clear effect: DPO's answers beat SFT's in {figure}, within two standard errors of 50%.",
        "unclear",
    )


def tradeoffs(sft: Mapping[str, float], dpo: Mapping[str, float], weights: Mapping[str, float]) -> str:
    """Which gold attributes DPO's change in gold reward came from, and which it gave up."""
    parts = []
    for name, w in weights.items():
        delta = w * (dpo[name] - sft[name])
        parts.append((delta, name, sft[name], dpo[name], w))
    parts.sort(reverse=True)
    gains = [p for p in parts if p[0] > 0.005]
    losses = [p for p in parts if p[0] < -0.005]

    def say(p: tuple[float, str, float, float, float]) -> str:
        delta, name, before, after, w = p
        return f"{name} {before:.2f} → {after:.2f} (weight {w:+g}: {delta:+.3f})"

    total = sum(p[0] for p in parts)
    text = f"DPO changed the mean gold reward by {total:+.3f}"
    if gains:
        text += ", gained from " + "; ".join(say(p) for p in gains)
    if losses:
        text += ". The trade-off: " + "; ".join(say(p) for p in losses)
        gained = ", ".join(p[1] for p in gains) or "nothing"
        text += f". DPO's gain comes from {gained}; {', '.join(p[1] for p in losses)} got worse"
    return text + "."


def curve_comment(curve: Mapping[str, Sequence[float]], who: str) -> str:
    """Where gold reward peaks along a best-of-n curve, and what the proxy does meanwhile."""
    gold, proxy, ns, kls = curve["gold"], curve["proxy"], curve["n"], curve["kl"]
    peak = max(range(len(gold)), key=lambda i: gold[i])
    if peak == len(gold) - 1:
        return (
            f"With {who}, gold reward still rises up to n = {ns[-1]} ({gold[0]:.2f} → {gold[-1]:.2f}; proxy "
            f"{proxy[0]:.2f} → {proxy[-1]:.2f}): at this budget (KL ≤ {kls[-1]:.2f} nats) the proxy is not "
            "over-optimised yet."
        )
    return (
        f"With {who}, gold reward peaks at n = {ns[peak]} ({gold[peak]:.2f}, KL {kls[peak]:.2f} nats) and falls "
        f"to {gold[-1]:.2f} at n = {ns[-1]} while the proxy keeps rising ({proxy[0]:.2f} → {proxy[-1]:.2f}): "
        "picking harder by the proxy now makes answers worse by the gold reward — over-optimisation "
        "(Gao et al. 2022)."
    )


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def write_quickstart_report(
    out: Path,
    metrics: dict[str, Any],
    sft_eval: dict[str, Any],
    dpo_eval: dict[str, Any],
    gold_weights: Mapping[str, float],
    samples_per_prompt: int,
) -> Path:
    """Write out/report.html and its PNGs from the quickstart's metrics and evaluations."""
    sft, dpo, bon, rm = metrics["sft"], metrics["dpo"], metrics["bon"], metrics["rm"]
    over = metrics["overoptimisation"]
    plots.method_bars(
        out / "gold_by_method.png",
        {
            "SFT": sft["gold_reward"],
            "DPO": dpo["gold_reward"],
            f"best-of-{bon['n']} (RM)": bon["gold_reward"],
        },
        {"SFT": sft_eval["attributes"], "DPO": dpo_eval["attributes"]},
        {
            "SFT": sft["gold_reward_se"],
            "DPO": dpo["gold_reward_se"],
            f"best-of-{bon['n']} (RM)": bon["gold_reward_se"],
        },
    )
    plots.overoptimisation(
        out / "bon_curve.png", bon["curve"], title="best-of-n, the quickstart's reward model"
    )
    plots.overoptimisation(
        out / "overoptimisation.png", over["proxy_curve"], title="best-of-n, a proxy pushed to n = 64"
    )
    plots.training_curves(
        out / "training.png",
        {s: out / s / "metrics.jsonl" for s in ("sft", "reward_model", "dpo")},
        reference_lines={s: (LN2, "ln 2: chance") for s in PAIRWISE_STAGES},
    )
    n = dpo["winrate_n"]
    sentence, _ = verdict(dpo["winrate_vs_sft"], dpo["winrate_se"], n)
    se = "(standard error)"
    rows = [
        ["SFT gold reward", f"{sft['gold_reward']:.3f} ± {sft['gold_reward_se']:.3f} {se}"],
        ["DPO gold reward", f"{dpo['gold_reward']:.3f} ± {dpo['gold_reward_se']:.3f} {se}"],
        [f"best-of-{bon['n']} gold reward (reward model picks)", f"{bon['gold_reward']:.3f} ± {bon['gold_reward_se']:.3f} {se}"],
        ["DPO win rate vs SFT (gold annotator, wins + ½ ties)", f"{dpo['winrate_vs_sft']:.1f}% ± {dpo['winrate_se']:.1f} {se}"],
        ["KL(DPO ‖ SFT), nats per answer, from DPO's samples", f"{dpo['kl']:.3f} ± {dpo['kl_se']:.3f} {se}"],
        ["reward model held-out accuracy (gold labels; chance 0.5)", f"{rm['heldout_accuracy']:.3f} ± {rm['heldout_accuracy_se']:.3f} {se} on {rm['heldout_pairs']} pairs"],
        ["total time", f"{metrics['seconds']:.0f} s"],
    ]  # fmt: skip
    attrs = [a for a in sft_eval["attributes"]]
    attr_rows = [
        [name, gold_weights.get(name, "—"), sft_eval["attributes"][name], dpo_eval["attributes"][name]]
        for name in attrs
    ]
    k = samples_per_prompt
    sft_gold, dpo_gold = sft_eval["gold"], dpo_eval["gold"]
    examples = [
        [sft_eval["prompts"][i], 1 + i % k, sft_eval["samples"][i], sft_gold[i], dpo_eval["samples"][i], dpo_gold[i]]
        for i in range(min(8, len(sft_eval["samples"])))
    ]  # fmt: skip
    repeat = (
        f"Each held-out prompt is answered {k} times by each policy (independent samples at temperature 1), so "
        f"each prompt appears {k} times in a row: # numbers its samples. "
        if k > 1
        else ""
    )
    sections = [
        ("Results", table_html(rows, ["metric", "value"])),
        (
            "Gold reward by method",
            _p(
                "Mean gold reward of answers to held-out prompts (left; error bars: ± 1 standard error) and the attributes it is made of (right)."
            )
            + embed_png(out / "gold_by_method.png", "gold reward by method"),
        ),
        (
            "Attributes of answers (means) and the trade-off",
            _p(tradeoffs(sft_eval["attributes"], dpo_eval["attributes"], gold_weights))
            + table_html(attr_rows, ["attribute", "gold weight", "SFT", "DPO"]),
        ),
        (
            "Over-optimisation",
            _p(
                "Best-of-n: draw n answers, keep the one a proxy reward ranks first. More n means more "
                "optimisation pressure (KL = log n − (n−1)/n from the sampler). Over-optimisation is the "
                "point where the proxy keeps rising but the gold reward falls."
            )
            + _p(
                curve_comment(
                    bon["curve"],
                    f"the quickstart's reward model ({rm['heldout_accuracy']:.0%} held-out accuracy)",
                )
            )
            + embed_png(out / "bon_curve.png", "best-of-n curve, the quickstart's reward model")
            + _p(
                curve_comment(
                    over["proxy_curve"],
                    "a linear proxy reward model fitted to the same kind of noisy, length-biased labels (the over-optimisation claim of `alignlab sim reproduce`)",
                )
            )
            + embed_png(
                out / "overoptimisation.png", "best-of-n curve, a proxy reward model pushed to n = 64"
            ),
        ),  # fmt: skip
        (
            "Training",
            _p(
                "Training loss per step. The reward model and DPO minimise pairwise logistic losses, which "
                "start at ln 2 ≈ 0.693 (a coin flip between the two answers); below the dashed line a model "
                "tells chosen from rejected. The labels are noisy (25% flipped), so the loss cannot reach 0."
            )
            + embed_png(out / "training.png", "training curves"),
        ),
        (
            "Samples on held-out prompts",
            _p(
                repeat
                + "Gold: the world's gold reward of that answer (correct + ½·polite + safe − ¼·filler words)."
            )
            + table_html(examples, ["prompt", "#", "SFT answer", "SFT gold", "DPO answer", "DPO gold"]),
        ),  # fmt: skip
    ]
    intro = f"<p class='verdict'><strong>{html.escape(sentence)}</strong></p>" + _p(
        "A tiny model learns simple tasks in a simulated world whose gold reward is known "
        "(correct + ½·polite + safe − ¼·filler words). Simulated annotators with label noise and a "
        "length bias label pairs; a reward model and DPO learn from them. Every ± is a standard error."
    )
    return write_report(out / "report.html", "alignlab quickstart", sections, intro, intro_html=True)
