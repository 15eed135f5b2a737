"""Atomic checkpoints in Hugging Face format, with everything needed to resume exactly.

``checkpoints/step-N/`` holds the model (``save_pretrained``, safetensors; the adapter for LoRA), the
tokenizer, ``optimizer.pt``, ``scheduler.pt``, ``rng.pt`` and ``trainer_state.json``. It is written to a
temporary directory, every file fsynced, then renamed, so a killed run never leaves half a checkpoint.
State files hold only tensors and plain containers and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import torch

from alignlab.durable import Snapshots, disk_full, is_disk_full
from alignlab.models.parts import unwrap

try:  # the "Writing model shards" bar on every save is noise in a training log
    from transformers.utils import logging as _hf_logging

    _hf_logging.disable_progress_bar()
except ImportError:  # pragma: no cover
    pass


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
    """``save_pretrained`` model and tokenizer; a full disk is a DiskFull naming ``path`` and the size."""
    model = getattr(model, "module", model)
    if merge_adapters and hasattr(model, "merge_and_unload"):
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    try:
        model.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)
    except Exception as err:
        if is_disk_full(err):
            needed = int(sum(p.numel() * p.element_size() for p in model.parameters()) * 1.1)
            raise disk_full(
                Path(path), needed, "the model", "the checkpoints written so far are intact"
            ) from None
        raise


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
    """Write ``checkpoints/step-N`` atomically through :class:`alignlab.durable.Snapshots`: temporary
    folders of killed writers are removed, a full disk is a :class:`~alignlab.durable.DiskFull` naming the
    folder and the space needed, and only the newest ``keep`` complete checkpoints stay."""

    def fill(tmp: Path) -> None:
        save_model(model, tokenizer, tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save({"rng": rng_state(), "objective": objective_state}, tmp / "rng.pt")
        state = dict(trainer_state)
        if "source" in state:  # the batch source's position; an online source's live rollout holds tensors
            torch.save(state.pop("source"), tmp / "source.pt")
        (tmp / "trainer_state.json").write_text(json.dumps({**state, "step": step}, indent=2))

    snapshots = Snapshots(checkpoints_dir, "step", keep)
    return snapshots.write(step, fill, estimate_bytes=checkpoint_bytes(model, optimizer))


def checkpoint_bytes(model: Any, optimizer: Any) -> int:
    """About what a checkpoint takes on disk: the trainable weights (or all weights) plus the optimiser's
    tensors, with 10% for the tokenizer and small files."""
    weights = sum(p.numel() * p.element_size() for p in unwrap(model).parameters())
    state = getattr(optimizer, "state", {})
    extra = sum(
        t.numel() * t.element_size()
        for per in (state.values() if hasattr(state, "values") else [])
        for t in (per.values() if isinstance(per, dict) else [])
        if isinstance(t, torch.Tensor)
    )
    return int((weights + extra) * 1.1)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest complete checkpoint. Temporary folders of killed writers are removed on the way, and a
    damaged newer checkpoint (a file missing or cut short) is reported as a warning and passed over."""
    snapshots = Snapshots(checkpoints_dir, "step")
    if not checkpoints_dir.exists():
        return None
    for orphan in snapshots.clean_orphans():
        warnings.warn(f"removed {orphan}, a checkpoint left half-written by a killed run", stacklevel=2)
    path, notes = snapshots.latest(check=_state_problem)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return path


def resolve_checkpoint(path: Path) -> Path:
    """The checkpoint ``--resume PATH`` names: PATH itself (a ``checkpoints/step-N`` folder), or the newest
    complete checkpoint of a run directory or of a ``checkpoints`` folder. ValueError says what PATH lacks."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(
            f"--resume {path}: no such folder; give a checkpoint (a checkpoints/step-N folder of a run) "
            "or a run directory, or --resume alone for the latest checkpoint in --out"
        )
    if (path / "trainer_state.json").exists():
        problem = _state_problem(path)
        if problem:
            raise ValueError(f"--resume {path}: not a usable checkpoint ({problem})")
        return path
    for folder in (path / "checkpoints", path):
        found = latest_checkpoint(folder) if folder.is_dir() else None
        if found is not None:
            return found
    raise ValueError(
        f"--resume {path}: neither a checkpoint (no trainer_state.json) nor a run directory or checkpoints "
        "folder holding one"
    )


def _state_problem(path: Path) -> str | None:
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "trainer_state.json is missing or unreadable"
    return None if isinstance(state, dict) and "step" in state else "trainer_state.json has no step"


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
    state = json.loads((path / "trainer_state.json").read_text())
    if (path / "source.pt").exists():
        state["source"] = torch.load(path / "source.pt", weights_only=True)
    return state, extra.get("objective", {})


def _tied_names(model: Any) -> set[str]:
    if not getattr(model.config, "tie_word_embeddings", False):
        return set()
    out = model.get_output_embeddings()
    return {
        name
        for name, p in model.named_parameters(remove_duplicate=False)
        if out is not None and p is out.weight
    }
