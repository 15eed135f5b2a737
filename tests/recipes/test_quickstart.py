"""The quickstart end to end: a fast run writes its files and metrics; the full run (slow) meets the bar."""

import json
import re

import pytest

from alignlab.recipes.quickstart import run_quickstart

KEYS = [
    "sft.gold_reward",
    "dpo.gold_reward",
    "dpo.winrate_vs_sft",
    "dpo.kl",
    "rm.heldout_accuracy",
    "bon.gold_reward",
]


def lookup(metrics, dotted):
    node = metrics
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """One fast quickstart for the tests of this module: (its folder, the metrics it returned)."""
    out = tmp_path_factory.mktemp("quickstart")
    return out, run_quickstart(out, fast=True)


def test_fast_quickstart_writes_report_plots_and_metrics(fast_run):
    tmp_path, metrics = fast_run
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in KEYS:
        assert isinstance(lookup(saved, key), float), key
    assert 0.0 <= saved["dpo"]["winrate_vs_sft"] <= 100.0
    rm = saved["rm"]  # every figure carries its standard error: binomial for an accuracy
    p, n = rm["heldout_accuracy"], rm["heldout_pairs"]
    want = (p * (1 - p) / n) ** 0.5 if n else float("nan")  # the fast run may hold no gold pair out
    assert rm["heldout_accuracy_se"] == pytest.approx(want, nan_ok=True)
    assert saved["bon"]["gold_reward_se"] > 0
    # the gold reward is the mean of the world's utility, whose range is [−verbosity·max words, 2.5]
    assert saved["sft"]["gold_reward"] <= 2.5
    assert saved == json.loads(json.dumps(metrics))
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4
    import base64

    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    for name in ("gold_by_method.png", "bon_curve.png", "overoptimisation.png", "training.png"):
        assert (tmp_path / name).stat().st_size > 1000
    # the preference data is real alignlab records, labelled by the annotators
    from alignlab.data.io import read_records

    records = read_records(tmp_path / "data" / "preferences.jsonl")
    assert records and all(r.ranking == [0, 1] and r.annotator == "default" for r in records)


def test_metrics_json_is_documented(fast_run):
    """Every name in metrics.json (to two levels; config, attributes and curves are documented whole) is in
    docs/metrics.md."""
    from tests.test_metrics_doc import documented_names

    tmp_path, _ = fast_run
    saved = json.loads((tmp_path / "metrics.json").read_text())
    names = set()
    for key, value in saved.items():
        if isinstance(value, dict) and key != "config":
            names.update(f"{key}.{sub}" for sub in value)
        else:
            names.add(key)
    assert not names - documented_names(), sorted(names - documented_names())


@pytest.mark.browser
def test_report_renders_in_chromium(fast_run):
    """The report opened in headless Chromium: every figure decodes and is drawn, the verdict leads."""
    from selenium.webdriver.common.by import By

    from tests.chromium import chromium

    tmp_path, metrics = fast_run
    with chromium() as d:
        d.get((tmp_path / "report.html").as_uri())
        drawn = d.execute_script(
            "return [...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0, "
            "i.getBoundingClientRect().width])"
        )
        assert len(drawn) == 4 and all(ok and width > 300 for _, ok, width in drawn), drawn
        verdict = d.find_element(By.CSS_SELECTOR, "p.verdict").text
        assert verdict == metrics["verdict"] and "(standard error)" in verdict
        headings = [h.text for h in d.find_elements(By.TAG_NAME, "h2")]
        assert headings[0] == "Results" and "Over-optimisation" in headings
        body = d.find_element(By.TAG_NAME, "body").text
        assert "ln 2" in body and "standard error" in body
        # The samples table gives each answer's gold reward: recomputed here by the world from the cells' text.
        from alignlab.recipes.settings import QuickstartSettings
        from alignlab.sim.worlds import TextWorld

        world = TextWorld(QuickstartSettings.model_validate(metrics["config"]).world_config())
        table = d.find_elements(By.TAG_NAME, "table")[-1]
        header = [c.text for c in table.find_elements(By.TAG_NAME, "th")]
        assert header == ["prompt", "#", "SFT answer", "SFT gold", "DPO answer", "DPO gold"]
        rows = [
            [c.get_attribute("textContent") for c in r.find_elements(By.TAG_NAME, "td")]
            for r in table.find_elements(By.TAG_NAME, "tr")[1:]
        ]
        assert rows
        for prompt, _, sft, sft_gold, dpo, dpo_gold in rows:
            want = world.gold_reward([prompt, prompt], [sft, dpo]).tolist()
            assert [float(sft_gold), float(dpo_gold)] == pytest.approx(want, abs=5e-4)


@pytest.mark.slow
def test_full_quickstart_dpo_beats_sft(tmp_path):
    metrics = run_quickstart(tmp_path)
    assert metrics["dpo"]["winrate_vs_sft"] >= 60.0
    assert metrics["dpo"]["gold_reward"] > metrics["sft"]["gold_reward"]
    assert metrics["rm"]["heldout_accuracy"] > 0.5
    p, n = metrics["rm"]["heldout_accuracy"], metrics["rm"]["heldout_pairs"]
    assert metrics["rm"]["heldout_accuracy_se"] == pytest.approx((p * (1 - p) / n) ** 0.5)
    assert metrics["seconds"] < 300
