"""codeclm and ensemble_instruct through ``alignlab data synthesize`` with the real generation subsystem
(the hf sampler) on a tiny locally built model: the mechanics end to end. A random model writes
gibberish; what is checked is that the records are valid, hold what the sampler wrote for the prompts the
pipeline built, and that the provenance sidecar names the models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignlab.data.io import read_records, write_records
from alignlab.data.records import Record

ALIGNLAB = str(Path(sys.executable).with_name("alignlab"))
INSTRUCTIONS = ["Name a colour.", "Add two and three.", "Say hello politely."]


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return subprocess.run([ALIGNLAB, *args], capture_output=True, text=True, env=env, timeout=600)


def _instructions(tmp_path: Path) -> Path:
    src = tmp_path / "instructions.jsonl"
    write_records([Record(prompt=t, completions=["-"]) for t in INSTRUCTIONS], src)
    return src


@pytest.mark.slow
def test_ensemble_instruct_cli_samples_with_the_hf_sampler_on_a_tiny_model(tmp_path):
    from alignlab.recipes.curation.synth import SamplerGenerate

    out = tmp_path / "ens.jsonl"
    args = ["data", "synthesize", str(out), "--method", "ensemble_instruct", "--model", "tiny:llama"]
    args += ["--ensemble-model", "tiny:llama", "--input", str(_instructions(tmp_path)), "--threshold", "0"]
    result = _cli(*args, "--batch-size", "3", "--max-new-tokens", "8", "--seed", "5")
    assert result.returncode == 0, result.stderr
    records = read_records(out)  # valid records (the reader validates every field)
    assert [r.prompt for r in records] == INSTRUCTIONS
    # what the sampler itself writes for these instructions in one batch with the batch's seed (5 + 0):
    # both ensemble members are the same seeded model with the same seed, so they agree (Rouge-L 1 or,
    # for an empty sample, 0) and the kept answer is that sample
    gen = SamplerGenerate("tiny:llama", max_new_tokens=8)
    gen.seed = 5
    expected = gen(list(INSTRUCTIONS))
    assert [r.completions[0] for r in records] == expected
    assert [r.meta["rouge_l"] for r in records] == [1.0 if e.split() else 0.0 for e in expected]
    sidecar = json.loads(Path(f"{out}.provenance.json").read_text())
    assert sidecar["models"]["model"] == "tiny:llama" and sidecar["models"]["models"] == "tiny:llama"
    assert sidecar["parameters"]["threshold"] == 0.0 and sidecar["counts"]["out"] == 3


@pytest.mark.slow
def test_codeclm_cli_samples_with_the_hf_sampler_and_scores_with_the_judge(tmp_path):
    rules = tmp_path / "rules.py"
    rules.write_text("def length(completions):\n    return [float(len(c)) for c in completions]\n")
    judge = json.dumps({"name": "reward_function", "function": f"{rules}:length"})
    out = tmp_path / "codec.jsonl"
    args = ["data", "synthesize", str(out), "--method", "codeclm", "--model", "tiny:llama"]
    args += ["--strong-model", "tiny:qwen2", "--judge", judge, "--input", str(_instructions(tmp_path))]
    result = _cli(*args, "--threshold", "-1000", "--batch-size", "3", "--max-new-tokens", "6")
    assert result.returncode == 0, result.stderr
    records = read_records(out)
    assert 1 <= len(records) <= 3  # generated instructions that came out empty are left out, counted
    dropped = sum(
        json.loads(Path(f"{out}.provenance.json").read_text())["counts"]["left_out_this_run"].values()
    )
    assert len(records) + dropped == 3
    for r in records:  # a pair strong > target whose gap is the judge's: len(strong) - len(target)
        assert r.k == 2 and r.ranking == [0, 1] and r.prompt.strip()
        assert r.meta["score_gap"] == pytest.approx(len(r.completions[0]) - len(r.completions[1]))
    sidecar = json.loads(Path(f"{out}.provenance.json").read_text())
    assert sidecar["models"]["model"] == "tiny:llama" and sidecar["models"]["strong_model"] == "tiny:qwen2"
    assert "length" in sidecar["models"]["judge"]
