"""The model-backed data tools: labelling (both orders), selection, synthesis, routing, from Python and the CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from alignlab.data.io import read_records, write_records
from alignlab.data.records import Record, pair
from alignlab.judges.base import Judge
from alignlab.recipes.curation.label import (
    flr_pairs,
    label_file,
    label_records,
    salmon_records,
    self_reference_labels,
)

ALIGNLAB = str(Path(sys.executable).with_name("alignlab"))


class BiasedJudge(Judge):
    """P(first ≻ second) = σ(len(first) − len(second) + bias): a known position bias."""

    name = "biased"

    def __init__(self, bias: float = 1.5):
        self.bias = bias

    def prefer_many(self, prompts, a, b):
        return torch.tensor([1 / (1 + math.exp(-(len(x) - len(y) + self.bias))) for x, y in zip(a, b)])


def test_label_pairs_averages_both_orders_of_a_position_biased_judge():
    records = [pair("p", "aaaa", "aa"), pair("q", "b", "bbb"), pair("r", "cc", "cc")]
    out = label_records(BiasedJudge(), records).records
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    expected = [0.5 * (sig(2 + 1.5) + 1 - sig(-2 + 1.5)), 0.5 * (sig(-2 + 1.5) + 1 - sig(2 + 1.5)), 0.5]
    assert [r.extras["ai_preference"] for r in out] == pytest.approx(expected)
    assert [r.ranking for r in out] == [[0, 1], [1, 0], [0, 0]]  # the equal pair is a tie, not "first wins"
    swapped = label_records(BiasedJudge(), [pair("p", "aa", "aaaa")]).records[0]
    assert swapped.extras["ai_preference"] + out[0].extras["ai_preference"] == 1.0


def test_label_file_reports_agreement_and_rejects_with_file_and_line(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [
        pair("p", "long answer", "no", id="a"),
        pair("q", "x", "much longer", id="b"),
        Record(prompt="k3", completions=["1", "2", "3"]),
        pair("s", "yes yes", "y", id="c"),
    ]
    write_records(rows, src)
    report = label_file(str(src), tmp_path / "out.jsonl", BiasedJudge(0.0), "biased")
    assert (report.records_in, report.records_out) == (4, 3)
    assert [str(r) for r in report.rejected] == [
        f"{src}:3: K = 3; pairs mode labels records with exactly 2 completions (convert first)"
    ]
    # existing labels say first wins for a, b, c; the judge (longer wins) agrees on a and c only
    assert report.extra["agreement"]["pairs"] == 3 and report.extra["agreement"]["agree"] == 2
    out = read_records(tmp_path / "out.jsonl")
    assert [r.ranking for r in out] == [[0, 1], [1, 0], [0, 1]]
    sidecar = json.loads((tmp_path / "out.jsonl.provenance.json").read_text())
    assert sidecar["method"] == "rlaif_labeler" and sidecar["inputs"][0]["hash"].startswith("sha256:")
    assert sidecar["counts"]["in"] == 4 and sidecar["counts"]["out"] == 3


@pytest.fixture(scope="module")
def tiny_lm():
    from alignlab.models.tiny import tiny_model

    model, tokenizer = tiny_model("llama")
    return model.eval(), tokenizer


def test_rlaif_judge_reads_verdict_logprobs_and_the_labeller_removes_its_position_bias(tiny_lm):
    from alignlab.judges.rlaif import RLAIFJudge
    from alignlab.scoring.rows import score_rows

    model, tokenizer = tiny_lm
    judge = RLAIFJudge(model, tokenizer)
    prompts, a, b = ["What is 2 + 2?"] * 2, ["4", "five"], ["five", "4"]
    p = judge.prefer_many(prompts, a, b)
    text = judge.texts(prompts[:1], a[:1], b[:1])[0]
    la = score_rows(model, tokenizer, [text], [" A"], add_eos=False).logps[0]
    lb = score_rows(model, tokenizer, [text], [" B"], add_eos=False).logps[0]
    assert float(p[0]) == pytest.approx(float(torch.sigmoid(la - lb)), abs=1e-6)
    out = label_records(judge, [pair(prompts[0], "4", "five"), pair(prompts[0], "five", "4")]).records
    assert out[0].extras["ai_preference"] + out[1].extras["ai_preference"] == 1.0


def test_self_reference_labels_are_order_symmetric(tiny_lm):
    from alignlab.judges.selfref import SelfReferenceJudge

    model, tokenizer = tiny_lm
    judge = SelfReferenceJudge(model, tokenizer)
    out = self_reference_labels(
        judge, [pair("Name a colour.", "blue", "seven"), pair("Name a colour.", "seven", "blue")]
    ).records
    assert out[0].extras["ai_preference"] + out[1].extras["ai_preference"] == pytest.approx(1.0, abs=1e-12)


def test_salmon_data_side_prefixes_principles_and_labels():
    principles = ["Be honest.", "Be concise."]
    out = salmon_records(BiasedJudge(), [pair("Say hi", "hello there", "hi")], principles).records
    assert out[0].prompt.startswith("Judge the response by these principles:\n1. Be honest.\n2. Be concise.")
    assert out[0].ranking == [0, 1]


def test_flr_data_side_scores_then_pairs(tiny_lm):
    from alignlab.judges.flr import FollowUpLikelihoodJudge

    model, tokenizer = tiny_lm
    judge = FollowUpLikelihoodJudge(model, tokenizer)
    record = Record(
        prompt="Tell me a fact.", completions=["The sky is blue.", "no", "Water is wet, I think."]
    )
    (best_vs_worst,) = flr_pairs(judge, [record])
    scores = judge.score([record.prompt] * 3, record.completions).tolist()
    assert best_vs_worst.completions == [
        record.completions[scores.index(max(scores))],
        record.completions[scores.index(min(scores))],
    ]


RULES = """
import time

def length(prompts, completions, **kw):
    time.sleep({delay})
    return [float(len(c)) for c in completions]
"""


def _cli(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return subprocess.run([ALIGNLAB, *args], capture_output=True, text=True, env=env, timeout=600, **kwargs)


def _pairs_file(tmp_path, n):
    src = tmp_path / "pairs.jsonl"
    write_records(
        [pair(f"prompt {i}", "x" * (i % 5 + 1), "y" * (i % 3 + 1), id=f"r{i}") for i in range(n)], src
    )
    return src


@pytest.mark.slow
def test_label_cli_killed_with_sigkill_resumes_without_loss_or_repeats(tmp_path):
    rules = tmp_path / "rules.py"
    rules.write_text(RULES.format(delay=0.15))
    judge = json.dumps({"name": "reward_function", "function": f"{rules}:length"})
    src, out = _pairs_file(tmp_path, 30), tmp_path / "labelled.jsonl"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    proc = subprocess.Popen(
        [ALIGNLAB, "data", "label", str(src), str(out), "--judge", judge, "--batch-size", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    parts = Path(str(out) + ".parts.jsonl")
    deadline = time.monotonic() + 300
    while not (parts.exists() and len(parts.read_text().splitlines()) >= 6):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(parts.read_text().splitlines())
    assert not out.exists() and 6 <= done_before < 30
    again = _cli("data", "label", str(src), str(out), "--judge", judge)
    assert again.returncode == 1 and "--resume" in again.stderr  # refuses to overwrite the parts
    resumed = _cli("data", "label", str(src), str(out), "--judge", judge, "--batch-size", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = read_records(out)
    assert [r.id for r in got] == [f"r{i}" for i in range(30)]  # every record once, in order
    rules.write_text(RULES.format(delay=0.0))
    reference = tmp_path / "reference.jsonl"
    assert _cli("data", "label", str(src), str(reference), "--judge", judge).returncode == 0
    assert [r.to_dict() for r in got] == [r.to_dict() for r in read_records(reference)]
    assert not parts.exists()


def test_select_cli_deita_removes_planted_duplicates_and_strict_fails_on_rejects(tmp_path):
    topics = [
        "volcanoes erupt",
        "bread rises with yeast",
        "tides follow the moon",
        "bees make honey",
        "rust is iron oxide",
        "owls hunt at night",
        "glass is mostly silica",
        "salt lowers ice melting",
        "violins have four strings",
        "comets have icy cores",
    ]
    base = [
        Record(prompt=f"Tell me why {t}.", completions=[f"Because {t}: here is how that works."])
        for t in topics
    ]
    dups = [Record(prompt=b.prompt, completions=list(b.completions)) for b in base[:4]]
    src = tmp_path / "pool.jsonl"
    write_records(base + dups, src)
    out = tmp_path / "chosen.jsonl"
    result = _cli("data", "select", str(src), str(out), "--method", "deita", "--budget", "14")
    assert result.returncode == 0, result.stderr
    assert len(read_records(out)) == 10 and "14 records in -> 10 out" in result.stdout
    shown = _cli("data", "validate", str(out))
    assert "made by: alignlab data select deita" in shown.stdout and "sha256:" in shown.stdout
    # ches_filter on a file with a K = 1 record: rejected with file:line, --strict exits 1
    pairs = tmp_path / "pairs.jsonl"
    write_records(
        [pair("p", "a", "b", extras={"ches": 1.0}), base[0], pair("q", "c", "d", extras={"ches": 5.0})], pairs
    )
    strict = _cli(
        "data",
        "select",
        str(pairs),
        str(tmp_path / "f.jsonl"),
        "--method",
        "ches_filter",
        "--values-from",
        "ches",
        "--q",
        "0.5",
        "--strict",
    )
    assert strict.returncode == 1 and f"{pairs}:2: ches_filter needs a strictly ranked pair" in strict.stdout
    assert "3 records in -> 1 out" in strict.stdout and "--strict" in strict.stderr
    assert [r.prompt for r in read_records(tmp_path / "f.jsonl")] == ["p"]


def test_select_file_got_d_keeps_the_in_domain_half_and_records_its_ot_settings(tmp_path):
    from alignlab.recipes.curation.select import select_file

    math_ = [f"What is {i} plus {i + 3}? The sum is {2 * i + 3}." for i in range(10)]
    cook = [
        f"Boil the pasta {i} minutes in salted water, then drain it and add olive oil." for i in range(10)
    ]
    pool = [Record(prompt="Question", completions=[t]) for pair_ in zip(math_, cook) for t in pair_]
    write_records(pool, tmp_path / "pool.jsonl")
    targets = [f"What is {i} plus {i + 7}? The sum is {2 * i + 7}." for i in range(20, 26)]
    write_records([Record(prompt="Question", completions=[t]) for t in targets], tmp_path / "target.jsonl")
    out = tmp_path / "kept.jsonl"
    report = select_file(
        str(tmp_path / "pool.jsonl"), out, "got_d_selection", 10, target=str(tmp_path / "target.jsonl")
    )
    assert report.records_out == 10
    assert sorted(r.completions[0] for r in read_records(out)) == sorted(math_)
    sidecar = json.loads((tmp_path / "kept.jsonl.provenance.json").read_text())
    assert sidecar["parameters"]["epsilon"] == 0.1 and sidecar["parameters"]["ot_cost"] == "sqeuclidean"


def test_convert_strict_exits_1_when_rows_were_skipped(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "p", "completions": ["a"]}\n{bad json\n')
    ok = _cli("data", "convert", str(src), str(tmp_path / "o.jsonl"), "--skip-bad")
    assert ok.returncode == 0 and "1 bad rows skipped" in ok.stdout
    strict = _cli("data", "convert", str(src), str(tmp_path / "o.jsonl"), "--skip-bad", "--strict")
    assert strict.returncode == 1 and f"{src}:2" in strict.stdout
    assert json.loads((tmp_path / "o.jsonl.provenance.json").read_text())["counts"]["in"] == 1


def test_synthesize_resumes_after_a_crash_to_the_same_records(tmp_path):
    from alignlab.recipes.curation.synth import synthesize_file

    src = tmp_path / "instructions.jsonl"
    write_records([Record(prompt=f"instruction {i}", completions=["-"]) for i in range(7)], src)
    calls = {"n": 0}

    def generate(prompts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the machine died")
        return [f"response to {p[-1]['content']} under {p[0]['content'][-40:]}" for p in prompts]

    out = tmp_path / "synth.jsonl"
    with pytest.raises(RuntimeError, match="died"):
        synthesize_file(out, "multifaceted_sysmsg", "fake", str(src), batch_size=3, generate=generate)
    assert len(Path(str(out) + ".parts.jsonl").read_text().splitlines()) == 2
    synthesize_file(
        out, "multifaceted_sysmsg", "fake", str(src), batch_size=3, resume=True, generate=generate
    )
    calls["n"] = -100
    reference = tmp_path / "reference.jsonl"
    synthesize_file(reference, "multifaceted_sysmsg", "fake", str(src), batch_size=3, generate=generate)
    assert [r.to_dict() for r in read_records(out)] == [r.to_dict() for r in read_records(reference)]
    assert len(read_records(out)) == 14


def test_magpie_on_a_tiny_model_starts_from_the_template_alone(tiny_lm, tmp_path):
    from alignlab.recipes.curation.synth import SamplerGenerate

    model, tokenizer = tiny_lm
    gen = SamplerGenerate.__new__(SamplerGenerate)
    gen.tokenizer = tokenizer
    ids = gen.pre_query_ids()
    assert tokenizer.decode(ids) == "<|im_start|>user\n"  # the ChatML pre-query template, no user text


def test_route_cli_spends_exactly_the_human_budget_through_the_app_api(tmp_path):
    """A real app (uvicorn on a port) gets a new project with exactly BUDGET tasks; the rest are AI-labelled."""
    pytest.importorskip("fastapi")
    from datetime import timedelta

    from alignlab.app import store
    from alignlab.app.db import Database
    from tests.app.live_server import LiveServer

    db = Database(f"sqlite:///{tmp_path / 'feedback.db'}")
    with db.session() as s:
        token, _ = store.issue_token(s, "admin", timedelta(days=1))
    rules = tmp_path / "rules.py"
    rules.write_text(RULES.format(delay=0.0))
    judge = json.dumps({"name": "reward_function", "function": f"{rules}:length"})
    src = _pairs_file(tmp_path, 12)
    with LiveServer(db) as server:
        result = _cli(
            "data",
            "route",
            str(src),
            "--budget",
            "5",
            "--judge",
            judge,
            "--ai-out",
            str(tmp_path / "ai.jsonl"),
            "--human-out",
            str(tmp_path / "human.jsonl"),
            "--app",
            server.url,
            "--token",
            token,
            "--project",
            "routed-test",
        )
        assert result.returncode == 0, result.stderr + result.stdout
        import httpx

        projects = httpx.get(
            f"{server.url}/api/admin/projects", headers={"Authorization": f"Bearer {token}"}
        ).json()
    (project,) = [p for p in projects if p["name"] == "routed-test"]
    assert project["progress"]["tasks"] == 5
    ai, human = read_records(tmp_path / "ai.jsonl"), read_records(tmp_path / "human.jsonl")
    assert (
        len(ai) == 7
        and len(human) == 5
        and {r.id for r in ai} | {r.id for r in human} == {f"r{i}" for i in range(12)}
    )
    # the people get the pairs the AI judge is least sure of: the smallest length gaps
    gap = {r.id: abs(len(r.completions[0]) - len(r.completions[1])) for r in read_records(src)}
    assert max(gap[r.id] for r in human) <= min(gap[r.id] for r in ai)
    assert "sent 5 records to people" in result.stdout


def test_trees_cli_writes_paths_and_reports_bad_rows(tmp_path):
    rows = [
        {"message_id": "r", "parent_id": None, "role": "prompter", "text": "hi", "message_tree_id": "t"},
        {
            "message_id": "a",
            "parent_id": "r",
            "role": "assistant",
            "text": "hello",
            "rank": 0,
            "message_tree_id": "t",
        },
        {
            "message_id": "b",
            "parent_id": "r",
            "role": "assistant",
            "text": "hey",
            "rank": 1,
            "message_tree_id": "t",
        },
        {"message_id": "c", "parent_id": "r", "role": "robot", "text": "?", "message_tree_id": "t"},
    ]
    src = tmp_path / "oasst.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "paths.jsonl"
    result = _cli("data", "trees", str(src), str(out), "--mode", "best", "--strict")
    assert result.returncode == 1 and f"{src}:4" in result.stdout  # the bad row, named; --strict fails
    assert [r.completions for r in read_records(out)] == [["hello"]]


def test_jury_with_three_judges_escalates_only_what_they_disagree_on():
    from alignlab.judges.rules import RuleJudge
    from alignlab.recipes.curation.label import jury_labels

    judges = [RuleJudge(lambda p, c, k=k: float(len(c) >= k)) for k in (3, 3, 6)]  # votes: len >= 3, 3, 6
    records = [Record(prompt="p", completions=["ok", "longer text", "four"])]
    (out,), escalated = jury_labels(judges, records)
    assert out.labels == [False, True, True]  # unanimous no, unanimous yes, 2 of 3 yes
    assert [v["escalate"] for v in out.meta["jury"]] == [False, False, True] and escalated == [True]
    (relaxed,), _ = jury_labels(judges, records, min_agreement=0.6)
    assert [v["escalate"] for v in relaxed.meta["jury"]] == [False, False, False]


def test_label_cli_jury_mode_escalates_split_votes(tmp_path):
    rules = tmp_path / "rules.py"
    rules.write_text(
        "def at_least(k):\n    return lambda p, c: float(len(c) >= k)\nlong3 = at_least(3)\nlong6 = at_least(6)\n"
    )
    juror = lambda name: json.dumps({"name": "rule", "function": f"{rules}:{name}"})  # noqa: E731
    src = tmp_path / "in.jsonl"
    write_records(
        [Record(prompt="p", completions=["ok", "longer text"]), Record(prompt="q", completions=["four"])], src
    )
    out, esc = tmp_path / "out.jsonl", tmp_path / "escalate.jsonl"
    result = _cli(
        "data",
        "label",
        str(src),
        str(out),
        "--mode",
        "jury",
        "--jury",
        juror("long3"),
        "--jury",
        juror("long3"),
        "--jury",
        juror("long6"),
        "--escalate-out",
        str(esc),
    )
    assert result.returncode == 0, result.stderr
    assert [r.labels for r in read_records(out)] == [[False, True], [True]]
    assert [r.prompt for r in read_records(esc)] == ["q"]  # only "four" split the jury (2 yes, 1 no)


@pytest.mark.slow
def test_selected_vs_random_on_a_small_world_keeps_fewer_mislabelled_pairs(tmp_path):
    """sim_check.selected_vs_random at small size (128 prompts, SFT 30 steps, DPO 40 steps, 16 held-out
    prompts), with pairs of the world's own demonstrations (different gold quality by construction; a
    30-step policy's samples would all tie at gold 0). Checked independently here: which kept pairs are
    mislabelled, recomputed from the written files with the world's gold reward; precision/recall from
    those counts; the random subset has the kept subset's size. The gold rewards are only required to be
    finite: their ordering was not stable across the seeds tried (docs/data.md)."""
    from alignlab.recipes.curation.sim_check import selected_vs_random
    from alignlab.recipes.settings import CompareSettings
    from alignlab.sim.worlds import TextWorld

    r = selected_vs_random(
        tmp_path, seed=0, steps=40, sft_steps=30, num_train=128, num_heldout=16, pairs_from="demonstrations"
    )
    world = TextWorld(CompareSettings(seed=0).world_config())

    def mislabelled(name):
        rows = read_records(tmp_path / "data" / f"{name}.jsonl")
        prompts = [row.prompt for row in rows]
        gap = world.gold_reward(prompts, [row.completions[0] for row in rows]) - world.gold_reward(
            prompts, [row.completions[1] for row in rows]
        )
        return len(rows), int((gap < 0).sum())

    kept, wrong_kept = mislabelled("selected")
    size, wrong_random = mislabelled("random")
    assert kept == size == r["kept"] < r["pairs"]
    assert (wrong_kept, wrong_random) == (r["mislabelled_in_selected"], r["mislabelled_in_random"])
    assert wrong_kept < wrong_random
    flagged = r["pairs"] - kept
    true_flags = r["mislabelled"] - wrong_kept
    assert r["flag_precision"] == pytest.approx(true_flags / flagged)
    assert r["flag_recall"] == pytest.approx(true_flags / r["mislabelled"])
    assert r["flag_precision"] > r["mislabelled"] / r["pairs"]  # better than flagging at random
    for name in ("sft", "selected", "random"):
        assert math.isfinite(r[f"gold_reward_{name}"])
