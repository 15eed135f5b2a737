"""Implicit rewards equal a hand computation from the two models' log-probs (plain HF forward passes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.data.records import pair
from alignlab.eval.rm_metrics import evaluate_judge
from alignlab.judges.implicit import ImplicitRewardJudge
from alignlab.models.tiny import tiny_model

PAIRS = [
    ("add two and three", "five", "six"),
    ("say hello", "hello", "goodbye"),
    ("count", "one two three", "three"),
]


def hand_logps(model, tokenizer, prompt, completion):
    """Per-token log-probs of the completion (+ EOS) after the prompt, from one plain forward pass."""
    p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logp = model(ids).logits[0].float().log_softmax(-1)
    return np.array([float(logp[len(p) - 1 + t, tok]) for t, tok in enumerate(c)])


def test_implicit_reward_accuracy_matches_hand_computation():
    policy, tok = tiny_model("llama", seed=1)
    reference, _ = tiny_model("llama", seed=2)
    beta = 0.5
    records = [pair(p, w, lose) for p, w, lose in PAIRS]
    hand = {}
    for variant in ("ref", "sum", "avg", "norm"):
        judge = ImplicitRewardJudge(policy, tok, reference if variant == "ref" else None, beta, variant)
        rewards = judge.score(
            [p for p, _, _ in PAIRS] * 2, [w for _, w, _ in PAIRS] + [x for _, _, x in PAIRS]
        ).numpy()
        for i, (p, w, lose) in enumerate(PAIRS):
            for j, text in ((i, w), (i + len(PAIRS), lose)):
                pol = hand_logps(policy, tok, p, text)
                if variant == "ref":
                    want = beta * (pol.sum() - hand_logps(reference, tok, p, text).sum())
                elif variant == "sum":
                    want = pol.sum()
                elif variant == "avg":
                    want = pol.mean()
                else:
                    want = -np.sqrt((pol**2).sum())
                assert np.isclose(rewards[j], want, atol=1e-4), (variant, text)
        n = len(PAIRS)
        hand[variant] = np.where(
            rewards[:n] > rewards[n:], 1.0, np.where(rewards[:n] == rewards[n:], 0.5, 0.0)
        ).mean()
        assert evaluate_judge(judge, records).accuracy == hand[variant]


def test_policy_equal_to_reference_gives_zero_reward():
    policy, tok = tiny_model("llama", seed=3)
    judge = ImplicitRewardJudge(policy, tok, policy, beta=0.1)
    assert torch.allclose(judge.score(["a", "b"], ["one", "two"]), torch.zeros(2))


def test_implicit_reward_from_config_takes_the_run_s_reference_beta_and_truncation(tmp_path):
    import yaml

    from alignlab.judges.build import build_judge
    from alignlab.judges.registry import JudgeConfigError

    policy, tok = tiny_model("llama", seed=5)
    reference, _ = tiny_model("llama", seed=6)
    run = tmp_path / "run"
    policy.save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    reference.save_pretrained(tmp_path / "start")
    tok.save_pretrained(tmp_path / "start")
    config = {
        "model": {"path": str(tmp_path / "start")},
        "objectives": [{"name": "dpo", "beta": 0.25}],
        "data": {"max_length": 64, "max_prompt_length": 24, "truncate_prompt": "keep_end"},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    judge = build_judge({"name": "implicit_reward", "path": str(run)})
    assert judge.beta == 0.25 and judge.variant == "ref"
    assert (judge.truncation.max_length, judge.truncation.max_prompt_length) == (64, 24)
    rewards = judge.score([p for p, _, _ in PAIRS], [w for _, w, _ in PAIRS]).numpy()
    for (p, w, _), r in zip(PAIRS, rewards):  # short rows: nothing is cut
        want = 0.25 * (hand_logps(policy, tok, p, w).sum() - hand_logps(reference, tok, p, w).sum())
        assert np.isclose(r, want, atol=1e-4)
    # a model folder without a run's config needs the reference named (or a reference-free variant)
    policy.save_pretrained(tmp_path / "bare")
    tok.save_pretrained(tmp_path / "bare")
    with pytest.raises(JudgeConfigError, match=r"--judge\.reference: .*sum, avg, norm"):
        build_judge({"name": "implicit_reward", "path": str(tmp_path / "bare")}, where="--judge")
    avg = build_judge({"name": "implicit_reward", "path": str(tmp_path / "bare"), "variant": "avg"})
    assert avg.reference is None and avg.truncation is None
