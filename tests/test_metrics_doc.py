"""Every metric name a short run writes to metrics.jsonl is documented in docs/metrics.md (the quickstart's
metrics.json is checked by tests/recipes/test_quickstart.py against the same page)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from alignlab.config import load_config
from alignlab.train.trainer import train

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
PARITY = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"
ONLINE = ["online.prompts=builtin:arithmetic", "online.prompts_per_rollout=2", "online.sampling.n=2",
          "online.sampling.max_new_tokens=4", PARITY]  # fmt: skip
RUNS = {
    "sft": [],
    "dpo": ["data.train=builtin:pairs", "objectives.0.name=dpo"],
    "kto": ["data.train=builtin:pairs", "objectives.0.name=kto", "data.convert=pairs_to_labels"],
    "bt": ["data.train=builtin:pairs", "objectives.0.name=bt", "model.kind=reward_model"],
    "grpo": ["objectives.0.name=grpo", "objectives.0.kl_coef=0.04", *ONLINE],
    "ppo": ["objectives.0.name=ppo", *ONLINE],
}


def documented_names() -> set[str]:
    """Every `code span` on the page, split at commas (a cell may list several names)."""
    names = set()
    for span in re.findall(r"`([^`]+)`", DOC.read_text()):
        names.update(part.strip() for part in span.split(","))
    return names


def test_every_metric_of_short_runs_is_documented(tmp_path):
    common = ["train.progress=false", "data.limit=16", "train.batch_size=4", "train.steps=2",
              "data.eval_fraction=0.25", f"reference.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    written: dict[str, set[str]] = {}
    kls = []  # every logged value of a metric called a KL
    for name, extra in RUNS.items():
        run = tmp_path / name
        train(load_config(None, [f"out={run}", *common, *extra]))
        for line in (run / "metrics.jsonl").read_text().splitlines():
            row = json.loads(line)
            written.setdefault(name, set()).update(row)
            kls += [row[k] for k in ("kl", "approx_kl") if k in row]
        written[name].update(json.loads((run / "summary.json").read_text()))
    assert {"loss", "lr", "logratios/mean", "kl", "approx_kl"} <= set().union(*written.values())
    assert kls and min(kls) >= 0  # k3 estimates (and KTO's clamped z0) are never negative
    assert "kl" not in written["dpo"]  # dpo's mean log-ratio on data completions is not called a KL
    missing = {name: sorted(keys - documented_names()) for name, keys in written.items()}
    assert not any(missing.values()), f"metrics missing from docs/metrics.md: {missing}"


def test_every_slash_named_metric_in_the_code_is_documented():
    """Metrics of objectives no short run above reaches: every "group/name" string the objectives and the
    loop write (their metric names are the only such strings there) is on the page; an f-string's
    {placeholder} matches a <placeholder> on the page."""
    src = Path(__file__).resolve().parents[1] / "src" / "alignlab"
    found: dict[str, str] = {}
    for folder in ("objectives", "train"):
        for path in (src / folder).glob("*.py"):
            for name in re.findall(r'f?"([a-z_]+/[a-z_0-9{}]+)"', path.read_text()):
                found[name] = path.name
    assert {"logratios/mean", "kl/sequence", "mse/{name}"} <= set(found)  # the scan sees the code's names
    documented = {re.sub(r"<[^>]+>", "{}", name) for name in documented_names()}
    missing = {
        n: f for n, f in found.items() if n != "eval/{k}" and re.sub(r"{[^}]+}", "{}", n) not in documented
    }
    assert not missing, f"metric names in the code missing from docs/metrics.md: {missing}"
