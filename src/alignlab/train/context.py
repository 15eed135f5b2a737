"""The parts of a training run that the loop's pieces share: built once by ``setup.py``, read by the step,
the evaluation, the reference handling and the batch sources (an online source samples from ``policy``
and scores with ``engine`` and ``reference``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from alignlab.data.batching import Batch
from alignlab.objectives import Objective
from alignlab.objectives.callbacks import Callback
from alignlab.scoring.engine import Engine, Reference
from alignlab.scoring.reference_cache import ReferenceLogps
from alignlab.scoring.scores import Scores
from alignlab.train.config import RunConfig


class PolicyScorer(nn.Module):
    """The policy and the engine as one module, so DDP/FSDP wrappers see the forward pass."""

    def __init__(self, model: Any, engine: Engine):
        super().__init__()
        self.model = model
        self.engine = engine

    def forward(self, batch: Batch, needs: frozenset[str], reference: Any, cached: Scores | None) -> Scores:
        return self.engine(self.model, batch, needs, reference, cached)


@dataclass
class LoopContext:
    """``policy`` is the model as loaded (unwrapped); ``scorer`` wraps it with the engine for
    accelerate; ``reference`` is None when no objective uses one or every reference log-prob is cached
    (``reference_cache``: split -> table, or None)."""

    config: RunConfig
    accelerator: Any
    objective: Objective
    callbacks: list[Callback]
    tokenizer: Any
    needs: frozenset[str]
    policy: Any
    engine: Engine
    layout: str
    scorer: Any
    reference: Reference | None
    reference_cache: dict[str, ReferenceLogps | None]

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    @property
    def device(self) -> Any:
        return self.accelerator.device

    def unwrapped_policy(self) -> Any:
        return self.accelerator.unwrap_model(self.scorer).model
