"""The recipes' settings (quickstart, sim compare), validated like the run config.

A recipe's settings are its defaults, then an optional profile (the quickstart's ``fast``), then the
user's overrides, merged key by key and validated as a whole: every section forbids unknown keys, so a
misspelt key is an error naming its place and the close names (``quickstart: sft.stpes: …``), never a
silently ignored value. The world and the annotators take their seed from the recipe's ``seed``.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alignlab.judges.simulated import AnnotatorSettings
from alignlab.sim.worlds import WorldConfig
from alignlab.validation import format_settings_error


class RecipeSettingsError(ValueError):
    """A bad key or value in a recipe's settings; the message names the place and the fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stage(Strict):
    """A training stage's budget: the ``train.*`` settings of its run."""

    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)

    def train(self) -> dict[str, Any]:
        """The stage's ``train`` section (objective hyper-parameters excluded)."""
        return {"steps": self.steps, "batch_size": self.batch_size, "learning_rate": self.learning_rate}


class QuickstartSFT(Stage):
    steps: int = Field(800, gt=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(3e-3, gt=0)


class QuickstartRewardModel(Stage):
    steps: int = Field(150, gt=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(1e-3, gt=0)


class QuickstartDPO(Stage):
    steps: int = Field(300, gt=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    beta: float = Field(0.1, gt=0)


class BestOfN(Strict):
    n: int = Field(8, gt=0)  # the N reported
    samples: int = Field(16, gt=0)  # samples per prompt drawn for the curve


class QuickstartSettings(Strict):
    """``alignlab quickstart``: the whole path on a text world (see recipes/quickstart.py)."""

    seed: int = 0
    # One intra-op thread: for a model this small, extra threads cost more in synchronisation than they
    # give, and on a busy machine spinning threads slow every op by orders of magnitude.
    threads: int = Field(1, gt=0)
    world: WorldConfig = Field(default_factory=lambda: WorldConfig(num_train=1024, num_heldout=128))
    # AlpacaFarm flips a quarter of training labels; these annotators also like longer answers.
    annotators: AnnotatorSettings = Field(
        default_factory=lambda: AnnotatorSettings(temperature=0.25, flip_rate=0.25, length_bias=0.1)
    )
    pairs_per_prompt: int = Field(4, gt=0)
    sft: QuickstartSFT = Field(default_factory=QuickstartSFT)
    reward_model: QuickstartRewardModel = Field(default_factory=QuickstartRewardModel)
    dpo: QuickstartDPO = Field(default_factory=QuickstartDPO)
    bon: BestOfN = Field(default_factory=BestOfN)
    eval_samples_per_prompt: int = Field(2, gt=0)

    def world_config(self) -> WorldConfig:
        return self.world.model_copy(update={"seed": self.seed})

    def annotator_settings(self) -> AnnotatorSettings:
        return self.annotators.model_copy(update={"seed": self.seed})


# The quickstart's ``fast`` profile (tests): every stage shrunk.
QUICKSTART_FAST: dict[str, Any] = {
    "world": {"num_train": 64, "num_heldout": 16},
    "pairs_per_prompt": 1,
    "sft": {"steps": 6, "batch_size": 16},
    "reward_model": {"steps": 4, "batch_size": 16},
    "dpo": {"steps": 4, "batch_size": 16},
    "bon": {"n": 4, "samples": 4},
    "eval_samples_per_prompt": 1,
}


class CompareSFT(Stage):
    steps: int = Field(200, gt=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(3e-3, gt=0)


class CompareBudget(Stage):
    """The budget every compared objective trains with."""

    steps: int = Field(80, gt=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(1e-3, gt=0)


class OnlineLeague(Strict):
    """How online objectives spend the league's judge budget (``sim compare``'s ``online`` section)."""

    prompts_per_rollout: int = Field(8, gt=0)
    n: int = Field(4, gt=1)  # samples per prompt
    max_new_tokens: int = Field(8, gt=0)
    epochs_per_rollout: int = Field(2, gt=0)
    learning_rate: float = Field(1e-3, gt=0)


class CompareSettings(Strict):
    """``alignlab sim compare``: every offline objective on one world, one data set, one budget."""

    seed: int = 0
    world: WorldConfig = Field(default_factory=lambda: WorldConfig(num_train=512, num_heldout=96))
    annotators: AnnotatorSettings = Field(
        default_factory=lambda: AnnotatorSettings(temperature=0.5, flip_rate=0.25, length_bias=0.1)
    )
    sft: CompareSFT = Field(default_factory=CompareSFT)
    budget: CompareBudget = Field(default_factory=CompareBudget)
    online: OnlineLeague = Field(default_factory=OnlineLeague)  # online methods: the same judge budget

    def world_config(self) -> WorldConfig:
        return self.world.model_copy(update={"seed": self.seed})

    def annotator_settings(self) -> AnnotatorSettings:
        return self.annotators.model_copy(update={"seed": self.seed})


S = TypeVar("S", bound=BaseModel)


def resolve_settings(cls: type[S], *layers: dict[str, Any] | BaseModel | None, where: str) -> S:
    """``cls``'s defaults, then each layer merged key by key (nested sections merge, values replace), validated.

    A layer may be a settings object of ``cls`` (taken whole). ``world.seed`` and ``annotators.seed`` are
    errors: the recipe's ``seed`` sets both, so one number reproduces a run.
    """
    data = cls().model_dump()
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, BaseModel):
            layer = layer.model_dump()
        elif not isinstance(layer, dict):
            raise RecipeSettingsError(f"{where}: expected a mapping of settings, got {type(layer).__name__}")
        else:
            for section in ("world", "annotators"):
                if isinstance(layer.get(section), dict) and "seed" in layer[section]:
                    raise RecipeSettingsError(
                        f"{where}.{section}.seed: set the recipe's top-level 'seed' instead (it seeds the world "
                        "and the annotators together)"
                    )
        data = _merge(data, layer)
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise RecipeSettingsError(format_settings_error(err, cls, where, "this section")) from None


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
