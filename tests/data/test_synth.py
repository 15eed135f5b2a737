"""Synthesis pipelines with plain-function generators (the sampler-backed path is in tests/recipes)."""

from __future__ import annotations

from alignlab.data.synth import (
    codeclm,
    consensus,
    constitutional_revisions,
    contrastive_filter,
    ensemble_instruct,
    magpie,
    multifaceted_sysmsg,
    rouge_l,
)

TEMPLATE_IDS = [1, 50, 51, 52]  # e.g. "<|im_start|>user\n"


def test_magpie_query_prompt_holds_template_tokens_only():
    seen = []

    def generate(prompts):
        seen.append(prompts)
        if isinstance(prompts[0], list) and all(isinstance(t, int) for t in prompts[0]):
            return ["How do magnets work?", "How do magnets work?", "hi", "Why is the sky blue?"]
        return [f"answer to {p[0]['content']}" for p in prompts]

    out = magpie(generate, TEMPLATE_IDS, count=4)
    assert seen[0] == [TEMPLATE_IDS] * 4  # nothing but the template's tokens
    assert [r.prompt[0]["content"] for r in out.records] == ["How do magnets work?", "Why is the sky blue?"]
    assert out.records[1].completions == ["answer to Why is the sky blue?"]
    assert out.dropped == {"duplicate query": 1, "query shorter than 8 characters": 1}


def test_codeclm_filter_keeps_only_rows_with_score_gap_above_threshold():
    assert contrastive_filter([0.5, 2.0, 1.0, -1.0], threshold=1.0) == [1]
    strong = lambda xs: [f"strong {x}" for x in xs]  # noqa: E731
    target = lambda xs: [f"weak {x}" for x in xs]  # noqa: E731
    generate = lambda xs: [x.splitlines()[-1] for x in xs]  # echoes the last line: seed -> instruction  # noqa: E731
    gaps = {"easy": 0.2, "hard": 3.0}

    def score(instructions, responses):
        return [gaps[i] if r.startswith("strong") else 0.0 for i, r in zip(instructions, responses)]

    out = codeclm(["easy", "hard"], generate, strong, target, score, threshold=1.0)
    assert [r.prompt for r in out.records] == ["hard"] and out.records[0].meta["score_gap"] == 3.0
    assert out.records[0].completions == ["strong hard", "weak hard"]


def test_rouge_l_by_hand():
    # LCS("the cat sat on the mat", "the cat lay on a mat") = "the cat on mat" = 4; P = 4/6, R = 4/6
    assert abs(rouge_l("the cat sat on the mat", "the cat lay on a mat") - 4 / 6) < 1e-12
    assert rouge_l("a b", "c d") == 0.0


def test_ensemble_consensus_drops_samples_whose_pairwise_rouge_l_is_below_threshold():
    assert consensus(["x y z", "x y z", "x y w"], 0.5)[0] == 0
    assert consensus(["alpha beta", "gamma delta", "epsilon"], 0.5)[0] is None
    agree = lambda xs: [f"the answer is {len(x)}" for x in xs]  # noqa: E731
    other = lambda xs: [f"the answer is {len(x)}" if x == "q1" else "no idea at all" for x in xs]  # noqa: E731
    out = ensemble_instruct(["q1", "question two"], [agree, agree, other], threshold=0.6)
    assert [r.prompt for r in out.records] == ["q1"]
    assert sum(out.dropped.values()) == 1


def test_multifaceted_every_row_has_a_non_default_system_message():
    out = multifaceted_sysmsg(
        ["explain tides", "write a haiku"], lambda ps: ["ok"] * len(ps), per_instruction=3
    )
    assert len(out.records) == 6
    for r in out.records:
        system = r.prompt[0]
        assert system["role"] == "system" and system["content"] != "You are a helpful assistant."
        assert "style:" in system["content"]


def test_constitutional_zero_rounds_returns_the_original_and_n_rounds_revise_n_times():
    calls = []

    def generate(prompts):
        calls.append(len(prompts))
        return [("critique" if p.rstrip().endswith("Critique:") else "revised") for p in prompts]

    same = constitutional_revisions(["q"], ["original"], generate, rounds=0)
    assert same.records[0].completions == ["original"] and calls == []
    twice = constitutional_revisions(["q"], ["original"], generate, rounds=2)
    assert twice.records[0].completions == ["revised"] and len(twice.records[0].meta["revisions"]) == 2
    assert calls == [1, 1, 1, 1]
