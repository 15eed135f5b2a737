"""Atomic checkpoints in Hugging Face format, with everything needed to resume exactly.

``checkpoints/step-N/`` holds the model (``save_pretrained``, safetensors; the adapter for LoRA), the
tokenizer, ``optimizer.pt``, ``scheduler.pt``, ``rng.pt`` and ``trainer_state.json``. It is written to a
temporary directory, every file fsynced, then renamed, so a killed run never leaves half a checkpoint.
State files hold only tensors and plain containers and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from alignlab.models.parts import unwrap

try:  # the "Writing model shards" bar on every save is noise in a training log
    from transformers.utils import logging as _hf_logging

    _hf_logging.disable_progress_bar()
except ImportError:  # pragma: no cover
    pass


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as f:
                os.fsync(f.fileno())


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(int(x) for x in state["python"]), state["python_pos"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_model(model: Any, tokenizer: Any, path: Path, merge_adapters: bool = False) -> None:
    model = getattr(model, "module", model)
    if merge_adapters and hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def save_checkpoint(
    checkpoints_dir: Path,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: Any,
    scheduler: Any,
    trainer_state: dict[str, Any],
    objective_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    final = checkpoints_dir / f"step-{step}"
    tmp = checkpoints_dir / f".tmp-step-{step}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, tokenizer, tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save({"rng": rng_state(), "objective": objective_state}, tmp / "rng.pt")
    (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "step": step}, indent=2))
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _prune(checkpoints_dir, keep)
    return final


def _prune(checkpoints_dir: Path, keep: int) -> None:
    steps = sorted((int(p.name.split("-")[1]), p) for p in checkpoints_dir.glob("step-*") if p.is_dir())
    for _, path in steps[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    steps = sorted(
        (int(p.name.split("-")[1]), p)
        for p in checkpoints_dir.glob("step-*")
        if p.is_dir() and (p / "trainer_state.json").exists()
    )
    return steps[-1][1] if steps else None


def load_checkpoint(
    path: Path, model: Any, optimizer: Any, scheduler: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore weights, optimiser, scheduler and RNG from ``path``; return (trainer_state, objective_state)."""
    from safetensors.torch import load_file

    base = unwrap(model)
    inner = getattr(model, "module", model)
    if hasattr(inner, "peft_config"):
        from peft import set_peft_model_state_dict

        adapter = load_file(str(path / "adapter_model.safetensors"))
        set_peft_model_state_dict(inner, adapter)
    else:
        state = {}
        for file in sorted(path.glob("*.safetensors")):
            state.update(load_file(str(file)))
        missing, unexpected = base.load_state_dict(state, strict=False)
        # Tied embeddings are saved once; anything else missing means a different model.
        missing = [m for m in missing if m not in _tied_names(base)]
        if missing or unexpected:
            raise ValueError(
                f"{path}: checkpoint does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    extra = torch.load(path / "rng.pt", weights_only=True)
    set_rng_state(extra["rng"])
    return json.loads((path / "trainer_state.json").read_text()), extra.get("objective", {})


def _tied_names(model: Any) -> set[str]:
    if not getattr(model.config, "tie_word_embeddings", False):
        return set()
    out = model.get_output_embeddings()
    return {
        name
        for name, p in model.named_parameters(remove_duplicate=False)
        if out is not None and p is out.weight
    }
