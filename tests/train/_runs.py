"""Helpers for training tests: run `alignlab train` in a subprocess and read back final weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]


def run_cli(
    args: list[str],
    env: dict[str, str] | None = None,
    launcher: list[str] | None = None,
    module: str = "alignlab",
) -> subprocess.CompletedProcess:
    command = (launcher or [sys.executable, "-m"]) + [module, *args]
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=full_env, cwd=REPO, timeout=600)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        out.update(load_file(str(file)))
    return out


def max_weight_difference(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and wa
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def kill_and_resume(
    tmp_path: Path, args: list[str], kill_at: int, after_kill: Callable[[Path], None] | None = None
) -> float:
    """Run ``alignlab train *args`` uninterrupted (``tmp_path/straight``) and again killed by a real SIGKILL
    after step ``kill_at`` (``tests/train/_kill_at.py``) then resumed with ``--resume`` (``tmp_path/killed``;
    ``after_kill`` inspects that directory between kill and resume). Returns the largest difference between
    the two final models' weights."""
    straight = run_cli(["train", *args, "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr
    killed = run_cli([str(kill_at), *args, "--out", str(tmp_path / "killed")], module="tests.train._kill_at")
    assert killed.returncode == -signal.SIGKILL
    if after_kill is not None:
        after_kill(tmp_path / "killed")
    resumed = run_cli(["train", *args, "--out", str(tmp_path / "killed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    return max_weight_difference(tmp_path / "straight" / "model", tmp_path / "killed" / "model")


def one_step(overrides: list[str]) -> tuple[float, dict[str, torch.Tensor], dict, object]:
    """(loss, gradients, the first objective's state, trainer) after one optimiser step of a config built from
    ``overrides``, run in this process."""
    from alignlab.config import load_config
    from alignlab.train.step import train_step
    from alignlab.train.trainer import Trainer

    trainer = Trainer(load_config(None, overrides))
    trainer._setup()
    metrics = train_step(trainer.context, trainer.source.next(), 1, lambda: "none")
    policy = trainer.context.unwrapped_policy()
    grads = {n: p.grad.detach().clone() for n, p in policy.named_parameters() if p.grad is not None}
    return metrics["loss"], grads, dict(trainer.objective.parts[0].state), trainer


# A reward the tiny random model's samples differ on, so every method sees non-zero advantages.
PARITY = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


def train_example(name: str, out: Path) -> tuple[Any, list[dict[str, Any]]]:
    """(the train result, the metrics.jsonl lines) of two steps of examples/NAME.yaml into ``out``: 4 prompts a
    rollout, 4 new tokens, one epoch and one minibatch, learning rate 0.01, the parity judge. Run it from the
    repository root (the examples name files relative to it)."""
    from alignlab.config import load_config
    from alignlab.train.trainer import train

    config = load_config(
        REPO / "examples" / f"{name}.yaml",
        [f"out={out}", "train.steps=2", "train.progress=false", "online.log_samples_every=0",
         "online.prompts_per_rollout=4", "online.sampling.max_new_tokens=4", "online.epochs_per_rollout=1",
         "online.minibatches=1", "train.learning_rate=0.01", PARITY],
    )  # fmt: skip
    result = train(config)
    return result, [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
