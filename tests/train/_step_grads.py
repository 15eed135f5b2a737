"""One training step's loss and gradients, for the cut-invariance tests (in-process or under accelerate).

    python -m tests.train._step_grads OUT.pt [--token-mean] [--set key=value ...]

Builds the run, takes the source's first global batch, runs the loop's step (forward/backward over this
process's micro-batches, no optimiser step) and saves {"loss", "grads", "state"} (the objective's running
state after the step) from the main process. Under DDP the
gradients are already averaged over the processes, so they are the global batch's.
"""

from __future__ import annotations

import argparse

import torch

from alignlab.config import load_config
from alignlab.objectives.compose import BoundObjective, Objective
from alignlab.objectives.registry import ObjectiveSpec
from alignlab.train.step import train_step
from alignlab.train.trainer import Trainer


def token_mean_nll(batch, normalisers=None):
    """-Σ_t log π(y_t) / (tokens of the global batch): a token-mean loss, normalised by the loop's counts."""
    tokens = normalisers.tokens if normalisers is not None else float(batch.items.lengths.sum())
    return -batch.items.logps / tokens


TOKEN_MEAN = ObjectiveSpec(
    name="token_mean_nll", fn=token_mean_nll, family="sft", feedback="demonstrations", needs=frozenset(),
    paper="test", params={}, stateful=False, reduction="sum",
)  # fmt: skip


def step_loss_and_grads(overrides: list[str], token_mean: bool = False, with_state: bool = False) -> tuple:
    trainer = Trainer(load_config(None, ["train.progress=false", *overrides]))
    if token_mean:
        trainer.objective = Objective([BoundObjective(TOKEN_MEAN, {})])
    trainer._setup()
    metrics = train_step(trainer.context, trainer.source.next(), 1, lambda: "none")
    policy = trainer.context.unwrapped_policy()
    grads = {n: p.grad.detach().clone() for n, p in policy.named_parameters() if p.grad is not None}
    if with_state:
        return metrics["loss"], grads, trainer.objective.state_dict()
    return metrics["loss"], grads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--token-mean", action="store_true")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    loss, grads, state = step_loss_and_grads(args.set, args.token_mean, with_state=True)
    from accelerate import PartialState

    if PartialState().is_main_process:
        torch.save({"loss": loss, "grads": grads, "state": state}, args.out)


if __name__ == "__main__":
    main()
