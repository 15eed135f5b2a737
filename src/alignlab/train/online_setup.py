"""Wire the ``online:`` section into the loop: prompts, sampler, judge, reference, the no-grad scorer, and
the :class:`~alignlab.train.rollout_source.RolloutSource` that hands the loop its rollouts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.config import ConfigError
from alignlab.data.batching import make_batch
from alignlab.data.prompts import PromptSetError, load_prompts
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.objectives.rollouts import RolloutPlan, plan_for
from alignlab.train.online_settings import OnlineSettings
from alignlab.train.rollout_source import RolloutSource


def online_plan(objective: Any) -> RolloutPlan | None:
    """The rollout plan of the run's online objective, None when every objective is offline."""
    plans = [(p.spec.name, plan_for(p.spec.name, p.params)) for p in objective.parts]
    online = [(name, plan) for name, plan in plans if plan is not None]
    if len(online) > 1:
        raise ConfigError(
            f"objectives: {', '.join(n for n, _ in online)} are each an online method; train one at a time"
        )
    return online[0][1] if online else None


def apply_loss_aggregation(objective: Any, settings: OnlineSettings) -> None:
    """``online.loss_aggregation`` overrides the online objective's own ``loss_aggregation``."""
    if settings.loss_aggregation is None:
        return
    for part in objective.parts:
        if "loss_aggregation" in part.params:
            part.params["loss_aggregation"] = settings.loss_aggregation


def build_sampler(settings: OnlineSettings, policy: Any, tokenizer: Any) -> Any:
    """The sampler backend named by ``online.sampler.backend``."""
    backend = settings.sampler.backend
    try:
        from alignlab.generation import build_sampler as build
    except ImportError as err:  # pragma: no cover - the generation package always ships it
        raise ConfigError(f"online.sampler: the generation backends are not available ({err})") from None
    try:
        return build(backend, policy, tokenizer, batch_size=settings.sampler.batch_size, **settings.sampler.options)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"online.sampler: {err}") from None


def build_online_judge(settings: OnlineSettings) -> Any:
    from alignlab.judges.build import build_judge

    try:
        return build_judge(settings.judge, where="online.judge")
    except ValueError as err:
        raise ConfigError(str(err)) from None


def read_prompts(settings: OnlineSettings) -> list[Any]:
    try:
        return load_prompts(settings.prompts, settings.prompts_limit)
    except PromptSetError as err:
        raise ConfigError(f"online.prompts: {err}") from None


class RolloutScorer:
    """Step 5 of a refresh: one no-grad engine pass over the rollout for the sampling policy's per-token
    log-probs (and a critic's values), and one over the reference for its log-probs."""

    def __init__(self, trainer: Any):
        self.trainer = trainer

    @torch.no_grad()
    def __call__(
        self, records: list[Record], groups: list[TokenizedGroup], want_reference: bool, want_values: bool
    ) -> dict[str, Tensor]:
        t = self.trainer
        width = max(len(c) for g in groups for c in g.completion_ids)
        out: dict[str, list[Tensor]] = {"old_logps": [], "mask": [], "ref_logps": [], "old_values": []}
        tc = t.config.train
        size = 4 * (tc.micro_batch_size or max(1, len(groups)))
        model = t.accelerator.unwrap_model(t.scorer)
        needs = frozenset({"token_logps"} | ({"token_values"} if want_values else set()))
        for start in range(0, len(groups), size):
            chunk = groups[start : start + size]
            batch = make_batch(records, chunk, t.layout, tc.tokens_per_row, t._pad_id).to(t.accelerator.device)
            with t.accelerator.autocast():
                scores = model(batch, needs, None, None)
            out["old_logps"].append(_pad(scores.token_logps, width))
            out["mask"].append(_pad(scores.token_mask, width))
            if want_values:
                out["old_values"].append(_pad(scores.extra["token_values"], width))
            if want_reference:
                if t.online_reference is None:
                    raise ConfigError("the KL term needs a reference policy, but none is loaded")
                ref = t.engine.reference_scores(t.online_reference, batch, frozenset({"token_logps"}))
                out["ref_logps"].append(_pad(ref.token_logps, width))
        return {k: torch.cat(v).float().cpu() for k, v in out.items() if v}


def _pad(values: Tensor, width: int) -> Tensor:
    return torch.nn.functional.pad(values.detach(), (0, width - values.shape[1]))


def build_source(trainer: Any, settings: OnlineSettings, plan: RolloutPlan) -> RolloutSource:
    policy = trainer.accelerator.unwrap_model(trainer.scorer).model
    try:
        return RolloutSource(
            settings,
            plan,
            read_prompts(settings),
            trainer.tokenizer,
            build_sampler(settings, policy, trainer.tokenizer),
            build_online_judge(settings),
            RolloutScorer(trainer),
            policy=lambda: trainer.accelerator.unwrap_model(trainer.scorer).model,
            reference=lambda: trainer.online_reference.model if trainer.online_reference is not None else None,
            seed=trainer.config.train.seed,
            note=trainer.logger.note,
            last_checkpoint=trainer.last_checkpoint,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
