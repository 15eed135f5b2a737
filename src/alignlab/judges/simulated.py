"""Simulated annotators over a world's gold attributes (AlpacaFarm's simulated pool, Dubois et al. 2023,
arXiv 2305.14387; the gold-RM loop of Gao et al. 2022, arXiv 2210.10760).

An annotator group g has weights w_g over the world's attributes; its utility of a completion is

    u_g(x, y) = Σ_a w_g,a · a(x, y) + λ_len · words(y)

and its choice between a (shown first) and b is Bradley–Terry with temperature T, a position bias β_pos,
a cyclic term over styles C[s(a), s(b)] (antisymmetric: sure ≻ ok ≻ yes ≻ sure with strength c), and
label flips with rate ε (AlpacaFarm flips training labels with ε = 0.25):

    P(a ≻ b) = (1 − ε)·σ((u_g(a) − u_g(b) + c·C[s(a), s(b)] + β_pos) / T) + ε·(1 − σ(...))

Each query goes to one group drawn by its share (AlpacaFarm routes each query to one random annotator
of the pool). With ``temperature = 0`` the choice is the argmax (ties broken by a fair coin), the
noise-free gold annotator used for evaluation. Outputs are alignlab Records: pairs, K-way rankings
(Plackett–Luce draws), thumbs up/down and 1–5 ratings per attribute.

checked: tatsu-lab/alpaca_farm examples/auto_annotations.ipynb (p_label_flip = 0.25 for training
labels) as summarised in METHODS.md "alpacafarm_annotators"; the rest is this module's definition.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.data.records import Record
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import JudgeConfigError, register_judge

FEEDBACK_KINDS = ("pairs", "rankings", "thumbs", "ratings")
# sure > ok > yes > sure: CYCLE[i][j] = +1 when style i beats style j in the cycle.
_CYCLE_ORDER = {("sure", "ok"): 1.0, ("ok", "yes"): 1.0, ("yes", "sure"): 1.0}


def cyclic_term(style_a: str | None, style_b: str | None) -> float:
    """+1 if a's style beats b's in the cycle sure ≻ ok ≻ yes ≻ sure, −1 if it loses, 0 otherwise."""
    if (style_a, style_b) in _CYCLE_ORDER:
        return 1.0
    if (style_b, style_a) in _CYCLE_ORDER:
        return -1.0
    return 0.0


class AnnotatorGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    share: float = Field(1.0, gt=0)
    weights: dict[str, float] | None = None  # over the world's attributes; the gold weights when None


class AnnotatorSettings(BaseModel):
    """A pool of simulated annotators (a config section)."""

    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(1.0, ge=0)
    flip_rate: float = Field(0.0, ge=0, le=1)
    length_bias: float = 0.0  # utility per word
    position_bias: float = 0.0  # added to the first-shown completion's side of the logit
    cyclic_strength: float = 0.0
    groups: list[AnnotatorGroup] = Field(default_factory=lambda: [AnnotatorGroup()])
    thumbs_threshold: float = 1.0  # thumbs up when the (noisy) utility exceeds this
    seed: int = 0


class World(Protocol):
    """What simulated annotators read from a world (``alignlab.sim.worlds.TextWorld`` is one): the named
    attributes of completions, the utility they weigh up to, the gold weights and each completion's style.
    The world lives above the judges (in ``sim``), so the annotators know it only through this."""

    attribute_names: Sequence[str]
    config: Any  # config.gold.as_vector(): the gold weight of each attribute

    def attributes(self, prompts: Sequence[str], completions: Sequence[str]) -> dict[str, Tensor]: ...

    def utility(
        self, attributes: dict[str, Tensor], weights: Mapping[str, float] | None = None
    ) -> Tensor: ...

    def style(self, completion: str) -> str | None: ...


@register_judge(
    "simulated",
    paper="Dubois et al. 2023 AlpacaFarm (arXiv 2305.14387); Gao et al. 2022 (arXiv 2210.10760)",
)
class SimulatedAnnotators(Judge):
    """A pool of simulated annotators over a world (``world.attributes`` and ``world.config.gold``).

    Config: ``{name: simulated, annotators: {temperature: 0.5, flip_rate: 0.1}}`` (:class:`AnnotatorSettings`);
    the world comes from whoever builds the judge (``build_judge(spec, world=world)``): worlds live above
    the judges, in ``alignlab.sim``.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        annotators: AnnotatorSettings = Field(default_factory=AnnotatorSettings)

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> SimulatedAnnotators:
        world = context.get("world")
        if world is None:
            raise JudgeConfigError(
                f"{where}: judge 'simulated' needs a world to annotate: build it with build_judge(spec, world=…) "
                "(a recipe or trainer on a simulated world passes its alignlab.sim.worlds.TextWorld)"
            )
        return cls(world, settings.annotators)

    def __init__(self, world: World, settings: AnnotatorSettings | None = None):
        self.world = world
        self.settings = settings or AnnotatorSettings()
        self.rng = random.Random(f"annotators/{self.settings.seed}")
        gold = world.config.gold.as_vector()
        self.group_weights = [g.weights or gold for g in self.settings.groups]
        shares = [g.share for g in self.settings.groups]
        self.group_probs = [s / sum(shares) for s in shares]
        self.attribute_names = list(world.attribute_names)

    # ---------------------------------------------------------------- utilities
    def utilities(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        """u_g(x, y) for every group: [N, G]."""
        attrs = self.world.attributes(prompts, completions)
        cols = [
            self.world.utility(attrs, w) + self.settings.length_bias * attrs["words"]
            for w in self.group_weights
        ]
        return torch.stack(cols, dim=-1)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        """The share-weighted mean utility [N] (what a reward model fitted to this pool would aim at)."""
        check_lengths(prompts, completions)
        probs = torch.tensor(self.group_probs, dtype=torch.float64)
        return self.utilities(prompts, completions) @ probs

    def logits(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        """Noise-free choice logits per group, [N, G] (before temperature and flips)."""
        s = self.settings
        ua, ub = self.utilities(prompts, a), self.utilities(prompts, b)
        cyc = torch.tensor(
            [cyclic_term(self.world.style(x), self.world.style(y)) for x, y in zip(a, b)],
            dtype=torch.float64,
        )
        return ua - ub + s.cyclic_strength * cyc[:, None] + s.position_bias

    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        """P(a ≻ b), averaged over groups by share, flips included: [N]."""
        check_lengths(prompts, a, b)
        s = self.settings
        z = self.logits(prompts, a, b)
        if s.temperature == 0:
            p = (z > 0).double() + 0.5 * (z == 0).double()
        else:
            p = torch.sigmoid(z / s.temperature)
        p = (1 - s.flip_rate) * p + s.flip_rate * (1 - p)
        return p @ torch.tensor(self.group_probs, dtype=torch.float64)

    # ------------------------------------------------------------------ labels
    def _group(self) -> int:
        return self.rng.choices(range(len(self.group_probs)), self.group_probs)[0]

    def _choice_prob(self, logit: float) -> float:
        t = self.settings.temperature
        if t == 0:
            return 1.0 if logit > 0 else 0.0 if logit < 0 else 0.5
        return 1.0 / (1.0 + math.exp(-logit / t))

    def label_pair(self, prompt: str, a: str, b: str) -> tuple[bool, str]:
        """(a chosen over b?, the group's name): one draw by one routed annotator, flip included."""
        g = self._group()
        logit = float(self.logits([prompt], [a], [b])[0, g])
        a_wins = self.rng.random() < self._choice_prob(logit)
        if self.rng.random() < self.settings.flip_rate:
            a_wins = not a_wins
        return a_wins, self.settings.groups[g].name

    def pairs(
        self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str], source: str = "sim"
    ) -> list[Record]:
        """One pair record per (prompt, a, b), chosen first.

        Identical completions carry no preference and empty ones cannot be records: both are skipped.
        """
        check_lengths(prompts, a, b)
        out = []
        for p, x, y in zip(prompts, a, b):
            if x == y or not x.strip() or not y.strip():
                continue
            a_wins, group = self.label_pair(p, x, y)
            chosen, rejected = (x, y) if a_wins else (y, x)
            out.append(
                Record(
                    prompt=p, completions=[chosen, rejected], ranking=[0, 1], source=source, annotator=group
                )
            )
        return out

    def ranking(self, prompt: str, completions: Sequence[str], source: str = "sim") -> Record:
        """A K-way ranking drawn Plackett–Luce from the routed group's utilities (T > 0), argmax at T = 0.

        Flips apply as a random swap of each adjacent pair with probability ε (the pairwise flip rate).
        """
        s = self.settings
        g = self._group()
        u = self.utilities([prompt] * len(completions), completions)[:, g].tolist()
        left, order = list(range(len(completions))), []
        while left:
            if s.temperature == 0:
                best = max(left, key=lambda i: (u[i], -i))
            else:
                top = max(u[i] for i in left)
                w = [math.exp((u[i] - top) / s.temperature) for i in left]
                best = self.rng.choices(left, w)[0]
            order.append(best)
            left.remove(best)
        for i in range(len(order) - 1):
            if self.rng.random() < s.flip_rate:
                order[i], order[i + 1] = order[i + 1], order[i]
        ranks = [0] * len(completions)
        for position, index in enumerate(order):
            ranks[index] = position
        return Record(
            prompt=prompt,
            completions=list(completions),
            ranking=ranks,
            source=source,
            annotator=s.groups[g].name,
        )

    def thumbs(self, prompt: str, completion: str, source: str = "sim") -> Record:
        """Thumbs up iff the routed group's utility (+ logistic noise of scale T) beats the threshold."""
        s = self.settings
        g = self._group()
        u = float(self.utilities([prompt], [completion])[0, g])
        noise = 0.0
        if s.temperature > 0:
            q = min(max(self.rng.random(), 1e-12), 1 - 1e-12)
            noise = s.temperature * math.log(q / (1 - q))
        up = u + noise > s.thumbs_threshold
        if self.rng.random() < s.flip_rate:
            up = not up
        return Record(
            prompt=prompt, completions=[completion], labels=[up], source=source, annotator=s.groups[g].name
        )

    def ratings(self, prompt: str, completions: Sequence[str], source: str = "sim") -> Record:
        """1–5 ratings per attribute (correct, polite, safe, concise) with Gaussian noise of scale T."""
        s = self.settings
        g = self._group()
        attrs = self.world.attributes([prompt] * len(completions), completions)
        rows = []
        for i in range(len(completions)):
            clean = {
                "correct": attrs["correct"][i].item(),
                "polite": attrs["polite"][i].item(),
                "safe": attrs["safe"][i].item(),
                "concise": 1.0 - min(attrs["verbosity"][i].item(), 4.0) / 4.0,
            }
            rows.append(
                {k: _to_scale(v + self.rng.gauss(0.0, s.temperature * 0.25)) for k, v in clean.items()}
            )
        return Record(
            prompt=prompt,
            completions=list(completions),
            scores=rows,
            source=source,
            annotator=s.groups[g].name,
        )


def _to_scale(value: float) -> float:
    """[0, 1] (clipped) to the 1–5 scale, rounded to an integer."""
    return float(round(1 + 4 * min(max(value, 0.0), 1.0)))


def gold_annotator(world: World) -> SimulatedAnnotators:
    """The noise-free gold annotator: argmax of the gold utility, no flips, no biases."""
    return SimulatedAnnotators(world, AnnotatorSettings(temperature=0.0))
