"""A saved reward model and the run that wrote it: where the model folder is, which objectives trained it,
how its inputs were cut, and a judge class loaded on it.

Shared by the judges that load trained reward models (``reward_model``, ``gpm``), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.models.reward import RewardModel, is_reward_model_dir


def resolve_model_dir(path: str | Path) -> Path:
    """``path`` itself if it holds a saved reward model, else its ``model/`` folder (a run directory)."""
    p = Path(path).expanduser()
    if is_reward_model_dir(p):
        return p
    if is_reward_model_dir(p / "model"):
        return p / "model"
    raise FileNotFoundError(
        f"{p} holds no reward model: give a run directory trained with a reward objective (bt, …) or its "
        "model/ folder (it must contain alignlab_reward_model.json)"
    )


def trained_objectives(model_dir: Path) -> list[str]:
    """The objective names of the run that saved ``model_dir`` (its run directory's config.yaml), if known."""
    import yaml

    config = model_dir.parent / "config.yaml"
    if not config.exists():
        return []
    entries = (yaml.safe_load(config.read_text()) or {}).get("objectives") or []
    return [e if isinstance(e, str) else str(e.get("name")) for e in entries]


def load_trained_judge(cls: Any, path: str | Path, device: str = "cpu", **kwargs: Any) -> Any:
    """``cls(model, tokenizer, **kwargs)`` for the reward model saved at ``path``, cutting inputs as its
    training run did unless ``max_length`` is given."""
    from transformers import AutoTokenizer

    directory = resolve_model_dir(path)
    model = RewardModel.from_pretrained(directory, device)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    judge = cls(model, tokenizer, **kwargs)
    trained = training_truncation(directory)
    if trained is not None and kwargs.get("max_length") is None:
        judge.truncation = trained  # score inputs exactly as they were cut in training
    return judge


def training_truncation(model_dir: Path) -> Any:
    """The truncation the run that saved ``model_dir`` trained with (from its config.yaml), if known."""
    import yaml

    from alignlab.data.tokenize import Truncation

    config = model_dir.parent / "config.yaml"
    if not config.exists():
        return None
    data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
    if "max_length" not in data:
        return None
    return Truncation(
        max_length=int(data["max_length"]),
        max_prompt_length=int(data.get("max_prompt_length", 512)),
        prompt=data.get("truncate_prompt", "keep_end"),
        completion="keep_start",
    )
