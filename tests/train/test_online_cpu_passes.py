"""Online training on CPU with no micro-batch setting cuts a rollout step into forward passes of at most
ONLINE_CPU_MICRO_BATCH_TOKENS positions (bounded activation memory) with the loss and gradients of one pass
over the whole step, and computes attention branch by branch; offline training keeps one pass and per-segment
SDPA."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from alignlab.config import load_config
from alignlab.data.batching import layout_tokens
from alignlab.train.step import ONLINE_CPU_MICRO_BATCH_TOKENS, micro_batch_budget, micro_batches, train_step
from alignlab.train.trainer import Trainer
from tests.train._online import setup_trainer

JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"
NEW_TOKENS = 24  # every completion is this long: 4 prompts x 8 x 24 > 512 positions whatever the prompts


def full_length(i: int, j: int, params) -> list[int]:
    """Completions that never stop early; first ids of both parities, so the advantages are not all zero."""
    return [10 + (7 * i + 3 * j + k) % 40 for k in range(params.max_new_tokens)]


def step_of(tmp_path, name, monkeypatch, *more):
    trainer = setup_trainer(
        tmp_path / name,
        [JUDGE, "online.prompts_per_rollout=4", "online.sampling.n=8",
         f"online.sampling.max_new_tokens={NEW_TOKENS}", "train.batch_size=4", *more],
        sampler_script=full_length, monkeypatch=monkeypatch,
    )  # fmt: skip
    batch = trainer.source.next()
    metrics = train_step(trainer.context, batch, 1, lambda: "none")
    grads = {n: p.grad.detach().clone() for n, p in trainer.context.unwrapped_policy().named_parameters()}
    return trainer, batch, metrics, grads


def test_online_cpu_default_cuts_a_rollout_step_with_the_loss_and_gradients_of_one_pass(
    tmp_path, monkeypatch
):
    trainer, batch, cut, cut_grads = step_of(tmp_path, "default", monkeypatch)
    eos = trainer.context.tokenizer.eos_token_id
    assert all(eos not in c for g in batch.groups for c in g.completion_ids)
    layout = trainer.context.layout
    whole = layout_tokens(batch.groups, layout)
    assert whole > ONLINE_CPU_MICRO_BATCH_TOKENS  # the step is over the budget ...
    passes = micro_batches(trainer.context, batch.groups, list(range(len(batch.groups))))
    assert cut["micro_batches"] == len(passes) > 1  # ... so it is cut,
    assert all(
        layout_tokens([batch.groups[i] for i in p], layout) <= ONLINE_CPU_MICRO_BATCH_TOKENS for p in passes
    )
    assert sorted(i for p in passes for i in p) == list(range(len(batch.groups)))  # every group once
    # and attention branch by branch (scoring/branch_attention.py), offline's per-segment SDPA below
    assert trainer.context.engine._attention_for(trainer.context.unwrapped_policy()) == "branch"
    assert trainer.optimizer.param_groups[0]["fused"]  # AdamW as one fused kernel per tensor

    # one pass over the same rollout (micro_batch_size = the batch): the same loss and gradients
    _, _, one, one_grads = step_of(tmp_path, "one", monkeypatch, "train.micro_batch_size=4")
    assert one["micro_batches"] == 1 and cut["tokens"] == one["tokens"] == whole
    assert cut["loss"] == pytest.approx(one["loss"], rel=1e-6, abs=1e-7)
    scale = max(float(g.abs().max()) for g in one_grads.values())
    assert scale > 1e-4  # a real gradient, not zeros
    for name, g in one_grads.items():
        assert float((cut_grads[name] - g).abs().max()) <= 1e-5 * scale, name


def test_offline_training_keeps_one_pass(tmp_path):
    trainer = Trainer(
        load_config(None, [f"out={tmp_path / 'run'}", "train.progress=false", "data.train=builtin:pairs",
                           "data.limit=48", "train.batch_size=24", "objectives.0.name=sft"])
    )  # fmt: skip
    trainer._setup()
    metrics = train_step(trainer.context, trainer.source.next(), 1, lambda: "none")
    assert metrics["tokens"] > ONLINE_CPU_MICRO_BATCH_TOKENS and metrics["micro_batches"] == 1
    assert trainer.context.engine._attention_for(trainer.context.unwrapped_policy()) == "segment"
    assert not trainer.optimizer.param_groups[0]["fused"]


@pytest.mark.parametrize(
    "online, device, micro_size, micro_tokens, folds, expected",
    [
        (True, "cpu", None, None, False, ONLINE_CPU_MICRO_BATCH_TOKENS),
        (True, "cuda", None, None, False, None),  # a GPU: one pass unless set
        (False, "cpu", None, None, False, None),  # offline: one pass unless set
        (True, "cpu", 2, None, False, None),  # records per pass as set
        (True, "cpu", None, 300, False, 300),  # the setting wins
        (True, "cpu", None, None, True, None),  # statistics folded before the step: no extra pass
    ],
)
def test_budget_rule(online, device, micro_size, micro_tokens, folds, expected):
    context = SimpleNamespace(
        config=SimpleNamespace(
            online=object() if online else None,
            train=SimpleNamespace(micro_batch_size=micro_size, micro_batch_tokens=micro_tokens),
        ),
        device=torch.device(device),
        objective=SimpleNamespace(folds_step_statistics=lambda: folds),
    )
    assert micro_batch_budget(context) == expected


def test_fused_adamw_gives_the_per_tensor_loops_update(tmp_path, monkeypatch):
    """Online training's fused AdamW step: the same weights as torch's per-tensor loop up to float rounding."""
    from alignlab.train import setup

    weights = {}
    for name in ("fused", "loop"):
        if name == "loop":
            monkeypatch.setattr(setup, "fused_adamw", lambda context, params: False)
        trainer, _, _, _ = step_of(tmp_path, name, monkeypatch, "train.learning_rate=1e-3")
        assert bool(trainer.optimizer.param_groups[0]["fused"]) == (name == "fused")
        before = {n: p.detach().clone() for n, p in trainer.context.unwrapped_policy().named_parameters()}
        trainer.optimizer.step()
        weights[name] = {
            n: p.detach() - before[n] for n, p in trainer.context.unwrapped_policy().named_parameters()
        }
    moved = max(float(d.abs().max()) for d in weights["loop"].values())
    assert moved > 1e-4  # a real step (lr 1e-3)
    for n, d in weights["loop"].items():
        torch.testing.assert_close(weights["fused"][n], d, atol=1e-6 * moved, rtol=1e-5)
