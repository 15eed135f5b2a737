"""Deita's scorers on a tiny local model: each score equals a numpy computation from that model's logits on
the official prompt template (written out here from hkust-nlp/deita's llama_scorer.py), the expectation
over the tokens "1".."6"; multi-turn records sum c_t * q_t; the scores drive ``alignlab data select``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignlab.data.io import read_records, write_records
from alignlab.data.records import Record
from alignlab.models.tiny import save_tiny
from alignlab.scoring.deita_scorer import DeitaScorer, evol_scores

COMPLEXITY = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. "
    "\n##Query: {instruction}  \n##Complexity: "
)
QUALITY = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
    "Question. \n #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("scorer") / "tiny-scorer", "llama", seed=3)


def _numpy_score(path, text: str) -> float:
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    # the ids of "1".."6" found by decoding the whole vocabulary (not by the code under test's lookup)
    vocab = {tokenizer.decode([i]): i for i in range(len(tokenizer))}
    ids = [vocab[str(d)] for d in range(1, 7)]
    with torch.no_grad():
        logits = model(torch.tensor([tokenizer.encode(text)])).logits[0, -1].double().numpy()
    z = logits[ids]
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return float(p @ np.arange(1, 7))


def test_complexity_and_quality_equal_numpy_expectations_from_the_logits(scorer_dir):
    scorer = DeitaScorer(str(scorer_dir), device="cpu", batch_size=2)
    instructions = ["add two and three", "write a short poem about the sea please", "hi"]
    responses = ["five", "the sea is blue and long", "hello, how can i help you today?"]
    got_c = scorer.complexity(instructions)  # batches of 2 of different lengths: padding is exercised
    got_q = scorer.quality(instructions, responses)
    for i, (x, y) in enumerate(zip(instructions, responses)):
        assert got_c[i] == pytest.approx(_numpy_score(scorer_dir, COMPLEXITY.format(instruction=x)), abs=1e-6)
        assert got_q[i] == pytest.approx(
            _numpy_score(scorer_dir, QUALITY.format(instruction=x, output=y)), abs=1e-6
        )
    assert np.all((got_c > 1) & (got_c < 6)) and len(set(np.round(got_c, 6))) == 3


def test_multi_turn_record_scores_sum_of_per_turn_products(scorer_dir):
    scorer = DeitaScorer(str(scorer_dir), device="cpu")
    chat = Record(
        prompt=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "add one and two"},
            {"role": "assistant", "content": "three"},
            {"role": "user", "content": "and times four"},
        ],
        completions=["twelve"],
    )
    single = Record(prompt="count to three", completions=["one two three"])
    got = evol_scores([chat, single], scorer, scorer)
    turn_pairs = [("add one and two", "three"), ("and times four", "twelve")]
    expected_chat = sum(
        _numpy_score(scorer_dir, COMPLEXITY.format(instruction=x))
        * _numpy_score(scorer_dir, QUALITY.format(instruction=x, output=y))
        for x, y in turn_pairs
    )
    expected_single = _numpy_score(
        scorer_dir, COMPLEXITY.format(instruction="count to three")
    ) * _numpy_score(scorer_dir, QUALITY.format(instruction="count to three", output="one two three"))
    assert got == pytest.approx([expected_chat, expected_single], abs=1e-5)


def test_select_file_deita_with_scorer_models_keeps_the_top_evol_scores(scorer_dir, tmp_path):
    from alignlab.recipes.curation.select import select_file

    texts = ["add two and three", "sort these numbers", "hello", "write a poem", "count to ten", "say yes"]
    records = [Record(prompt=t, completions=[f"answer: {t}"]) for t in texts]
    write_records(records, tmp_path / "pool.jsonl")
    out = tmp_path / "kept.jsonl"
    path = str(scorer_dir)
    select_file(
        str(tmp_path / "pool.jsonl"), out, "deita", 3, threshold=1.0,
        complexity_scorer=path, quality_scorer=path,
    )  # fmt: skip
    evol = [
        _numpy_score(path, COMPLEXITY.format(instruction=t))
        * _numpy_score(path, QUALITY.format(instruction=t, output=f"answer: {t}"))
        for t in texts
    ]
    top = sorted(np.argsort(evol)[::-1][:3].tolist())
    assert [r.prompt for r in read_records(out)] == [texts[i] for i in top]
    sidecar = json.loads((tmp_path / "kept.jsonl.provenance.json").read_text())
    assert sidecar["models"]["complexity_scorer"] == path and sidecar["models"]["quality_scorer"] == path
    with pytest.raises(ValueError, match="not both"):
        select_file(str(tmp_path / "pool.jsonl"), out, "deita", 3, complexity="c", complexity_scorer=path)


@pytest.mark.slow
def test_data_select_cli_takes_the_scorer_models(scorer_dir, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    texts = ["add two and three", "hello", "write a poem", "say yes"]
    write_records([Record(prompt=t, completions=[f"answer: {t}"]) for t in texts], tmp_path / "pool.jsonl")
    out = tmp_path / "kept.jsonl"
    cli = str(Path(sys.executable).with_name("alignlab"))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    args = [cli, "data", "select", str(tmp_path / "pool.jsonl"), str(out), "--method", "deita"]
    args += ["--budget", "2", "--quality-scorer", str(scorer_dir), "--threshold", "1.0"]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    quality = [
        _numpy_score(str(scorer_dir), QUALITY.format(instruction=t, output=f"answer: {t}")) for t in texts
    ]
    assert [r.prompt for r in read_records(out)] == [texts[i] for i in sorted(np.argsort(quality)[::-1][:2])]
    sidecar = json.loads((tmp_path / "kept.jsonl.provenance.json").read_text())
    assert sidecar["parameters"]["quality_scorer"] == str(scorer_dir)
