"""Quark on rollouts: the tags as new vocabulary entries, the data pool, its reward quantiles, and one step's
loss, against values computed here (numpy quantiles, the tag's id before the tokenizer's ids of the prompt,
plain forward passes of the policy on the tagged prompt and of the reference on the untagged one); and the
example config trains end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from alignlab.config import load_config
from alignlab.models.tiny import save_tiny
from alignlab.train.step import train_step
from alignlab.train.trainer import train
from tests.train._online import setup_trainer

REPO = Path(__file__).resolve().parents[2]
JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


def script(i, j, params):
    """Completion j of prompt i: first id 10 + i + j (reward 1 when even), then EOS."""
    return [10 + i + j + 7 * params.seed % 3, 20 + j, 2]


def quantiles_by_hand(rewards, k):
    order = np.argsort(-np.asarray(rewards), kind="stable")  # best first, ties in arrival order
    per = len(rewards) // k
    out = np.empty(len(rewards), dtype=int)
    out[order] = np.minimum(np.arange(len(rewards)) // per, k - 1)
    return out


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def recording(sampler):
    """Wrap ``sampler.sample`` to keep the prompt ids of every call."""
    calls, sample = [], sampler.sample

    def wrapped(prompts, params):
        calls.append([list(p) for p in prompts])
        return sample(prompts, params)

    sampler.sample = wrapped
    return calls


@torch.no_grad()
def plain(model, prompt_ids, completion_ids):
    ids = torch.tensor([prompt_ids + completion_ids])
    start = len(prompt_ids) - 1
    return model(input_ids=ids).logits[0, start : start + len(completion_ids)].double().log_softmax(-1)


@pytest.mark.parametrize("layout", ["packed", "separate"])
def test_pool_quantiles_tags_and_one_step_loss(tmp_path, monkeypatch, layout):
    reference = save_tiny(tmp_path / "reference", "llama", seed=3)
    beta, alpha = 0.05, 0.06
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, f"objectives=[{{name: quark, num_quantiles: 2, kl_coef: {beta}, entropy_coef: {alpha}}}]",
         f"reference.path={reference}", "online.prompts_per_rollout=2", "online.sampling.n=3",
         "online.sampling.max_new_tokens=3", f"train.layout={layout}"],
        script,
        monkeypatch,
    )  # fmt: skip
    source = trainer.source
    tokenizer = trainer.context.tokenizer
    # the tags are two new vocabulary entries of the policy and its tokenizer; the reference keeps 512
    tags = tokenizer.convert_tokens_to_ids(["<|quark_0|>", "<|quark_1|>"])
    assert tags == [512, 513] and encode(tokenizer, "<|quark_1|>hi")[0] == 513
    assert trainer.context.unwrapped_policy().get_input_embeddings().weight.shape[0] == 514
    assert trainer.context.reference.model.get_input_embeddings().weight.shape[0] == 512
    calls = recording(source.sampler)
    pool_rewards = []
    for refresh in range(2):
        batch = source.next()
        # the first samples come from the prompt alone, later ones after the best tag; all join the pool
        sampled_rows = [source.rows[row] for row, *_ in source.pool[6 * refresh :: 3]]
        untagged = [encode(tokenizer, r.prompt) for r in sampled_rows]
        assert calls[refresh] == (untagged if refresh == 0 else [[tags[0], *ids] for ids in untagged])
        assert len(source.pool) == 6 * (refresh + 1)
        pool_rewards = [float(ids[0] % 2 == 0) for _, ids, _, _ in source.pool]
        assert [item[3] for item in source.pool] == pool_rewards
        quantiles = quantiles_by_hand(pool_rewards, 2)
        # served: a draw of 6 pool samples, each after its own quantile's tag
        assert len(batch.groups) == 6
        for record, group in zip(batch.records, batch.groups):
            k = int(group.rollout["quantile"][0])
            index = next(
                i for i, (row, ids, _, _) in enumerate(source.pool)
                if ids == group.completion_ids[0] and source.tagged_prompt_ids(row, k) == group.prompt_ids
            )  # fmt: skip
            assert k == quantiles[index]
            untagged = source.rows[source.pool[index][0]].prompt
            assert group.prompt_ids == [tags[k], *encode(tokenizer, untagged)]
            assert record.prompt == f"<|quark_{k}|>" + untagged
        source.served = source.settings.steps_per_rollout  # the next call refreshes
    assert sorted(set(quantiles)) == [0, 1] and sum(pool_rewards) not in (0, len(pool_rewards))
    # one step's loss: token mean of −log π(y_t | tag, x, y_<t) + β·KL(π‖π_ref) − α·H, by plain forwards:
    # the policy after the tag, the reference on the prompt WITHOUT it; the KL over the reference's 512
    # tokens with the policy renormalised on them, the NLL and the entropy over all 514
    policy, ref = trainer.context.unwrapped_policy(), trainer.context.reference.model
    terms = []
    for group in batch.groups:
        lp = plain(policy, group.prompt_ids, group.completion_ids[0])
        lr = plain(ref, group.prompt_ids[1:], group.completion_ids[0])
        kept = lp[:, :512].log_softmax(-1)
        taken = lp.gather(-1, torch.tensor(group.completion_ids[0])[:, None])[:, 0]
        kl = (kept.exp() * (kept - lr)).sum(-1)
        terms.append(-taken + beta * kl - alpha * -(lp.exp() * lp).sum(-1))
    want = float(torch.cat(terms).mean())
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    assert abs(metrics["loss"] - want) < 1e-5


def test_state_keeps_the_pool(tmp_path, monkeypatch):
    overrides = [JUDGE, "objectives=[{name: quark, num_quantiles: 2}]", "online.prompts_per_rollout=2",
                 "online.sampling.n=2"]  # fmt: skip
    trainer = setup_trainer(tmp_path / "a", overrides, script, monkeypatch)
    trainer.source.next()
    again = setup_trainer(tmp_path / "b", overrides, script, monkeypatch)
    again.source.load_state_dict(trainer.source.state_dict())
    assert again.source.pool == trainer.source.pool and len(again.source.pool) == 4


def test_the_example_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    out = tmp_path / "quark"
    config = load_config(
        REPO / "examples" / "quark.yaml",
        [f"out={out}", "train.steps=4", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=4", "online.sampling.n=2"],
    )  # fmt: skip
    assert train(config).steps == 4
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["quark/pool_size"] == 32  # four rollouts (one step each) of 4 prompts × 2 samples
    assert all(np.isfinite(r["loss"]) for r in rows)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights_with_the_tags(tmp_path):
    """The tags' new rows, the pool and the live draw survive a kill: resumed = uninterrupted (1e-6)."""
    from tests.train._runs import kill_and_resume

    settings = [
        "--set", "objectives=[{name: quark, num_quantiles: 2}]", "--set", "online.prompts=builtin:arithmetic@16",
        "--set", "online.prompts_per_rollout=4", "--set", "online.sampling.n=2",
        "--set", "online.sampling.max_new_tokens=4", "--set", "online.minibatches=2",
        "--set", "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}",
        "--set", "online.log_samples_every=0", "--set", "train.steps=6", "--set", "train.learning_rate=0.01",
        "--set", "train.progress=false", "--set", "train.save_every=3",
    ]  # fmt: skip
    assert kill_and_resume(tmp_path, settings, kill_at=5) < 1e-6
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "killed" / "model")
    assert tokenizer.convert_tokens_to_ids(["<|quark_0|>", "<|quark_1|>"]) == [512, 513]


def test_tags_the_policy_writes_are_dropped_from_its_completions(tmp_path, monkeypatch):
    """The official code decodes a response with skip_special_tokens before it joins the pool: a tag token in
    a completion is dropped, and a completion of tags alone leaves nothing to add."""
    scripts = {0: [20, 512, 21, 2], 1: [513, 512]}  # 512, 513: the tags' ids (new entries after 512 tokens)
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, "objectives=[{name: quark, num_quantiles: 2}]", "online.prompts_per_rollout=2",
         "online.sampling.n=2", "online.sampling.max_new_tokens=4"],
        lambda i, j, params: scripts[j],
        monkeypatch,
    )  # fmt: skip
    assert trainer.source.tag_ids == [512, 513]
    trainer.source.next()
    assert [ids for _, ids, _, _ in trainer.source.pool] == [[20, 21, 2], [20, 21, 2]]
