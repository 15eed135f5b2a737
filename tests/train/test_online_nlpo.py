"""NLPO on rollouts: the sampler and the engine apply the same top-p mask of the masking policy (checked
against a nucleus computed here in numpy from plain forward passes), top_p = 1 is exactly PPO (the METHODS
test), and the masking policy is re-copied from the policy every update_every rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from alignlab.config import load_config
from alignlab.train.trainer import train
from tests.train._online import setup_trainer
from tests.train._runs import weights

REPO = Path(__file__).resolve().parents[2]
JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


def nucleus_numpy(logits, top_p, keep_ids):
    """The tokens whose preceding mass (sorted by probability, descending) is <= top_p; specials kept."""
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    before = np.cumsum(p[order]) - p[order]
    allowed = np.zeros(len(p), dtype=bool)
    allowed[order[before <= top_p]] = True
    allowed[order[0]] = True
    allowed[list(keep_ids)] = True
    return allowed


def test_sampler_and_engine_use_the_same_nucleus(tmp_path, monkeypatch):
    top_p, temperature = 0.6, 0.8
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, f"objectives=[{{name: nlpo, top_p: {top_p}, update_every: 1}}]", "online.prompts_per_rollout=2",
         "online.sampling.n=2", "online.sampling.max_new_tokens=5", f"online.sampling.temperature={temperature}",
         "online.kl={coef: 0.05, estimator: k1}"],
    )  # fmt: skip
    source = trainer.source
    batch = source.next()
    # the masking policy is a copy of the policy taken before this rollout (update_every 1, first rollout)
    policy = trainer.context.unwrapped_policy()
    keep = sorted(set(trainer.context.tokenizer.all_special_ids))
    # the same sample again, with the sampler's own log-probs
    params = source.settings.sampling.model_copy(update={"seed": source._sampling_seed() - 7_919})
    source.sampler.sync(source.sampling_model())
    rollouts = source.sampler.sample([g.prompt_ids for g in batch.groups], params)
    masked_somewhere = False
    for r, (g, j) in zip(rollouts, [(g, j) for g in batch.groups for j in range(2)]):
        assert r.completion_ids == g.completion_ids[j]
        with torch.no_grad():
            ids = torch.tensor([g.prompt_ids + r.completion_ids])
            start = len(g.prompt_ids) - 1
            z = (
                policy(input_ids=ids).logits[0, start : start + len(r.completion_ids)].double().numpy()
                / temperature
            )
        for t, token in enumerate(r.completion_ids):
            allowed = nucleus_numpy(z[t], top_p, keep)  # the masking policy equals the policy here
            assert allowed[token]  # every sampled token is in the nucleus
            logp = z[t] - z[t].max()
            by_hand = logp[token] - np.log(np.exp(logp[allowed]).sum())
            masked_somewhere |= not allowed.all()
            assert abs(r.logprobs[t] - by_hand) < 1e-4  # the sampler's log-prob: the masked policy
            assert abs(float(g.rollout["old_logps"][j, t]) - by_hand) < 1e-4  # the engine's: the same
    assert masked_somewhere


def test_top_p_one_is_exactly_ppo(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    runs = {}
    for name, objective in (("ppo", "{name: ppo}"), ("nlpo", "{name: nlpo, top_p: 1.0}")):
        out = tmp_path / name
        config = load_config(
            REPO / "examples" / "nlpo.yaml",
            [f"out={out}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
             "online.prompts_per_rollout=2", "online.sampling.max_new_tokens=4", "online.epochs_per_rollout=1",
             "online.minibatches=1", "train.learning_rate=0.01", f"objectives=[{objective}]", JUDGE],
        )  # fmt: skip
        assert train(config).steps == 2
        runs[name] = (
            weights(out / "model"),
            [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()],
        )
    (ppo_w, ppo_m), (nlpo_w, nlpo_m) = runs["ppo"], runs["nlpo"]
    assert ppo_w.keys() == nlpo_w.keys()
    for key in ppo_w:
        torch.testing.assert_close(nlpo_w[key], ppo_w[key], rtol=0, atol=0)
    assert [m["loss"] for m in ppo_m] == [m["loss"] for m in nlpo_m]


def script(i, j, params):
    return [10 + i + j, 20 + j, 2]


def test_the_masking_policy_is_recopied_every_update_every_rollouts(tmp_path, monkeypatch):
    trainer = setup_trainer(
        tmp_path,
        [JUDGE, "objectives=[{name: nlpo, update_every: 2}]", "online.prompts_per_rollout=2",
         "online.sampling.n=2", "train.learning_rate=0.05", "train.steps=8"],
        script,
        monkeypatch,
    )  # fmt: skip
    source = trainer.source
    policy = trainer.context.unwrapped_policy()
    name = "model.embed_tokens.weight"
    mask = lambda: source._mask_params[name].detach().clone()  # noqa: E731
    current = lambda: dict(policy.named_parameters())[name].detach().clone()  # noqa: E731
    initial = current()
    seen = []
    for step in range(1, 4):
        trainer.train_step(source.next(), step)  # rollout `step` sampled, then one optimiser step on it
        source.after_optimizer_step(step)
        seen.append((mask(), current()))
    # rollouts 1 and 2 are masked by the initial copy; rollout 3 by the policy after 2 updates
    assert torch.equal(seen[0][0], initial) and torch.equal(seen[1][0], initial)
    assert torch.equal(seen[2][0], seen[1][1]) and not torch.equal(seen[2][0], initial)
    state = source.state_dict()
    assert torch.equal(state["nlpo_mask"][name], seen[2][0])
