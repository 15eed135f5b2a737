"""The eval HTML report opened in headless Chromium (the app tests' driver): every figure it embeds decodes
and renders (a natural size above zero), and the table shows each figure's interval."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.eval.html_report import write_eval_report
from alignlab.eval.registry import run_metric
from tests.chromium import chromium

pytestmark = pytest.mark.browser


def _results():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200)
    n = 60
    base_len, model_len = rng.integers(50, 300, n), rng.integers(50, 500, n)
    verdicts = 1 / (1 + np.exp((base_len - model_len) / 150))
    a = ["x", "y", "z"] * 100
    b = ["y", "z", "x"] * 100
    winner = ["model_a" if u < 0.6 else "model_b" for u in rng.random(300)]
    d = np.linspace(0.1, 4, 12)
    return {
        "ece": run_metric("ece", p_chosen=p, rounds=20),
        "elo_bt": run_metric("elo_bt", model_a=a, model_b=b, winner=winner, rounds=20),
        "lc_winrate": run_metric(
            "lc_winrate",
            verdicts=verdicts,
            model_outputs=["m" * k for k in model_len],
            baseline_outputs=["b" * k for k in base_len],
            rounds=10,
        ),
        "overopt_curves": run_metric("overopt_curves", kl=d**2, gold=d * (1 - 0.3 * d), form="bon"),
    }


def test_report_renders_every_figure_in_chromium(tmp_path):
    path = write_eval_report(tmp_path / "report.html", "eval report", _results(), ["a note"])
    with chromium() as driver:
        driver.get(path.as_uri())
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('img.figure'))"
            ".map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);"
        )
        alts = {s[0] for s in sizes}
        assert alts == {
            "reliability diagram",
            "Elo ratings with intervals",
            "win rate against length",
            "gold and proxy reward against KL",
        }
        assert all(done and w > 100 and h > 100 for _, done, w, h in sizes), sizes
        text = driver.find_element("tag name", "body").text
        assert "95% interval" in text and "lc_win_rate" in text and "note: a note" in text
