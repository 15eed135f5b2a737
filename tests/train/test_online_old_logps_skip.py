"""A rollout trained on once, at the weights that sampled it, needs no old-log-prob pass: the loss takes
the current log-probs, detached (TRL's ``old = per_token_logps.detach()``). Checked against the same step
with the pass run (the engine's no-grad log-probs stored as ``old_logps``): same loss, same gradients."""

from __future__ import annotations

import pytest
import torch

from alignlab.train.step import train_step
from tests.train._online import setup_trainer

JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


def loss_and_gradients(trainer, batch) -> tuple[float, list[torch.Tensor]]:
    policy = trainer.context.unwrapped_policy()
    policy.zero_grad(set_to_none=True)
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    grads = [p.grad.detach().clone() for p in policy.parameters() if p.grad is not None]
    return metrics["loss"], grads


@pytest.mark.parametrize(
    "objective",
    ["{name: grpo}", "{name: grpo, kl_coef: 0.04, loss_aggregation: seq_mean_token_mean}", "{name: dr_grpo}"],
)
def test_skipping_the_old_logp_pass_gives_the_same_loss_and_gradients(tmp_path, objective) -> None:
    trainer = setup_trainer(
        tmp_path,
        [
            JUDGE,
            f"objectives=[{objective}]",
            "online.prompts_per_rollout=3",
            "online.sampling.n=4",
            "online.sampling.max_new_tokens=6",
            "train.micro_batch_size=2",
        ],
    )  # fmt: skip  (the real sampler, one epoch and one minibatch per rollout)
    source = trainer.source
    assert source.on_policy_update
    batch = source.next()
    assert all("old_logps" not in g.rollout for g in batch.groups)  # the pass was skipped
    skipped_loss, skipped_grads = loss_and_gradients(trainer, batch)

    # the same rollout with the pass run: the engine's no-grad log-probs as old_logps
    scored = source.scorer(batch.records, batch.groups, False, False, want_old=True)
    k = len(batch.groups[0].completion_ids)
    for i, group in enumerate(batch.groups):
        group.rollout = {**group.rollout, "old_logps": scored["old_logps"][i * k : (i + 1) * k]}
    passed_loss, passed_grads = loss_and_gradients(trainer, batch)

    assert skipped_loss == pytest.approx(passed_loss, abs=1e-6)
    assert len(skipped_grads) == len(passed_grads) > 0
    for a, b in zip(skipped_grads, passed_grads):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    assert any(float(g.abs().max()) > 1e-4 for g in passed_grads)  # a real gradient, not zeros


@pytest.mark.parametrize(
    "overrides",
    [
        ["online.epochs_per_rollout=2"],
        ["online.prompts_per_rollout=4", "online.minibatches=2"],
        ["objectives=[{name: rloo}]"],  # KL in the reward reads the sampling policy's log-probs
    ],
)
def test_the_pass_runs_when_the_rollout_is_reused_or_the_reward_reads_it(tmp_path, overrides) -> None:
    trainer = setup_trainer(
        tmp_path, [JUDGE, "online.sampling.n=2", "online.sampling.max_new_tokens=4", *overrides]
    )
    assert not trainer.source.on_policy_update
    batch = trainer.source.next()
    assert all("old_logps" in g.rollout for g in batch.groups)
