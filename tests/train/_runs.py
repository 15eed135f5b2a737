"""Helpers for training tests: run `alignlab train` in a subprocess and read back final weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
