"""The text world as an online-training task: its prompts as ``online.prompts`` rows, judged by the world's
gold reward (the ``simulated`` judge with its default, noise-free annotators scores the gold utility).

    online:
      prompts: sim:text-world              # the world's training prompts (seed 0)
      judge: {name: simulated}             # gold utility u = correct + 0.5·polite + safe − 0.25·filler

``sim:text-world/SEED`` picks another world seed; ``sim:text-world-heldout`` the held-out prompts.
"""

from __future__ import annotations

from alignlab.data.prompts import PromptRow, prompt_source
from alignlab.sim.worlds import TextWorld, WorldConfig


@prompt_source("sim:text-world", "the simulated text world's prompts (-heldout, /seed); judge: simulated")
def world_prompts(spec: str = "") -> list[PromptRow]:
    """The prompts of a text world: ``spec`` is ``[-heldout][/SEED]`` (the text after ``sim:text-world``)."""
    split_text, _, seed_text = spec.lstrip("-").partition("/")
    split = "heldout" if split_text == "heldout" else "train"
    if split_text not in ("", "train", "heldout"):
        raise ValueError(f"sim:text-world-{split_text}: the split must be train or heldout")
    world = TextWorld(WorldConfig(seed=int(seed_text) if seed_text else 0))
    return [PromptRow(task.prompt, {"task": task.kind, "answer": task.answer}) for task in world.tasks(split)]


def world_from_settings(settings: dict) -> TextWorld:
    """A text world from its settings (``online.world``); errors name the field."""
    from pydantic import ValidationError

    try:
        return TextWorld(WorldConfig.model_validate(settings))
    except ValidationError as err:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        ) from None
