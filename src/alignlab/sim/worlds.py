"""Text worlds with a known gold reward: tasks a tiny model learns in minutes, an imperfect demonstrator.

    world = TextWorld(WorldConfig(seed=0))
    prompts = world.prompts("train")                     # seeded, disjoint from world.prompts("heldout")
    demos = world.demonstrations("train")                # imperfect SFT data (Records)
    world.gold_reward(prompts, completions)              # gold utility per completion, [N]
    world.attributes(prompts, completions)               # {"correct": [N], "polite": [N], ...}

The gold utility weighs named attributes (see :mod:`alignlab.sim.tasks`):
u = w_correct·correct + w_polite·polite + w_safe·safe − w_verbosity·verbosity.
The demonstrator answers right with probability ``p_correct``, is polite with ``p_polite``, refuses a
forbidden request with ``p_refuse`` and pads with filler words, so SFT on its demonstrations leaves
room to improve. Everything is a deterministic function of the config (and its seed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from alignlab.data.records import Record, demonstration
from alignlab.sim import tasks as T


class GoldWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    correct: float = 1.0
    polite: float = 0.5
    safe: float = 1.0
    verbosity: float = 0.25  # subtracted per filler word

    def as_vector(self) -> dict[str, float]:
        return {
            "correct": self.correct,
            "polite": self.polite,
            "safe": self.safe,
            "verbosity": -self.verbosity,
        }


class DemonstratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p_correct: float = Field(0.55, ge=0, le=1)
    p_polite: float = Field(0.25, ge=0, le=1)  # the polite style marker
    p_other_style: float = Field(0.3, ge=0, le=1)  # a neutral style marker (ok / yes)
    p_refuse: float = Field(0.4, ge=0, le=1)  # refuses a forbidden request
    p_over_refuse: float = Field(0.05, ge=0, le=1)  # refuses an allowed one
    p_filler: float = Field(0.5, ge=0, lt=1)  # each further filler word is added with this probability
    max_filler: int = Field(4, ge=0)

    @model_validator(mode="after")
    def _styles(self) -> DemonstratorSettings:
        if self.p_polite + self.p_other_style > 1:
            raise ValueError("demonstrator: p_polite + p_other_style must be at most 1")
        return self


class WorldConfig(BaseModel):
    """A text world's parameters (a config section; every field has a default)."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    tasks: list[str] = Field(default_factory=lambda: list(T.TASKS))
    task_weights: list[float] | None = None  # sampling weights of ``tasks``; uniform when None
    num_train: int = Field(512, gt=0)
    num_heldout: int = Field(128, gt=0)
    gold: GoldWeights = Field(default_factory=GoldWeights)
    demonstrator: DemonstratorSettings = Field(default_factory=DemonstratorSettings)

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        unknown = [t for t in self.tasks if t not in T.TASKS]
        if unknown:
            raise ValueError(f"world.tasks: unknown task(s) {unknown}; choose from {list(T.TASKS)}")
        if self.task_weights is not None and len(self.task_weights) != len(self.tasks):
            raise ValueError(
                f"world.task_weights has {len(self.task_weights)} entries but world.tasks has {len(self.tasks)}"
            )
        return self


class TextWorld:
    """A seeded text world; see the module docstring."""

    attribute_names = T.ATTRIBUTES

    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()
        self._tasks: dict[str, list[T.Task]] = {}

    # ------------------------------------------------------------------ prompts
    def rng(self, purpose: str, extra: int = 0) -> random.Random:
        """A generator fixed by the world's seed and the purpose, so splits do not share draws."""
        return random.Random(f"{self.config.seed}/{purpose}/{extra}")

    def tasks(self, split: str = "train") -> list[T.Task]:
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got '{split}'")
        if split not in self._tasks:
            self._tasks[split] = self._draw_tasks(split)
        return self._tasks[split]

    def _draw_tasks(self, split: str) -> list[T.Task]:
        cfg = self.config
        n = cfg.num_train if split == "train" else cfg.num_heldout
        rng = self.rng(split)
        weights = cfg.task_weights or [1.0] * len(cfg.tasks)
        out: list[T.Task] = []
        # Held-out prompts may repeat training prompts' text (the task space is small); that is fine for
        # a policy: it is scored on fresh samples, never on remembered labels.
        for _ in range(n):
            kind = rng.choices(cfg.tasks, weights)[0]
            out.append(T.make_task(kind, rng))
        return out

    def prompts(self, split: str = "train") -> list[str]:
        return [t.prompt for t in self.tasks(split)]

    # -------------------------------------------------------------- demonstrator
    def demonstrate(self, task: T.Task, rng: random.Random) -> str:
        """One imperfect demonstration of ``task``."""
        d = self.config.demonstrator
        u = rng.random()
        style = T.POLITE_STYLE if u < d.p_polite else None
        if style is None and u < d.p_polite + d.p_other_style:
            style = rng.choice([s for s in T.STYLES if s != T.POLITE_STYLE])
        if task.forbidden:
            body = T.REFUSAL if rng.random() < d.p_refuse else T.COMPLIANCE
        elif rng.random() < d.p_over_refuse:
            body = T.REFUSAL
        else:
            body = task.answer if rng.random() < d.p_correct else task.wrong
        filler = 0
        while filler < d.max_filler and rng.random() < d.p_filler:
            filler += 1
        return T.render(style, body, filler, rng)

    def demonstrations(self, split: str = "train", per_prompt: int = 1) -> list[Record]:
        rng = self.rng(f"demonstrations/{split}")
        return [
            demonstration(t.prompt, self.demonstrate(t, rng), source=f"sim:text-world/{split}")
            for t in self.tasks(split)
            for _ in range(per_prompt)
        ]

    def ideal(self, task: T.Task) -> str:
        """The gold-optimal completion: polite, right (or refusing), no filler."""
        return T.render(T.POLITE_STYLE, task.answer, 0)

    # ------------------------------------------------------------------- gold
    def attributes(self, prompts: Sequence[str], completions: Sequence[str]) -> dict[str, Tensor]:
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        rows = [T.attributes(p, c) for p, c in zip(prompts, completions)]
        return {name: torch.tensor([r[name] for r in rows], dtype=torch.float64) for name in T.ATTRIBUTES}

    def utility(self, attributes: dict[str, Tensor], weights: dict[str, float] | None = None) -> Tensor:
        """Σ_a w_a · attribute_a; ``weights`` default to the gold weights (verbosity's is negative)."""
        weights = weights or self.config.gold.as_vector()
        total = torch.zeros_like(next(iter(attributes.values())))
        for name, w in weights.items():
            if name not in attributes:
                raise ValueError(f"weight for unknown attribute '{name}'; attributes are {list(attributes)}")
            total = total + w * attributes[name]
        return total

    def style(self, completion: str) -> str | None:
        """The completion's style marker (``sure``, ``ok``, ``yes``) or None."""
        return T.parse_completion(completion).style

    def gold_reward(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        return self.utility(self.attributes(prompts, completions))


def world_from_dict(data: dict | None) -> TextWorld:
    """A world from a config mapping; errors name the field."""
    from pydantic import ValidationError

    try:
        return TextWorld(WorldConfig.model_validate(data or {}))
    except ValidationError as err:
        lines = [f"  world.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ValueError("invalid world config\n" + "\n".join(lines)) from None
