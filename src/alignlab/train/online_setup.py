"""Wire the ``online:`` section into the loop: the :class:`~alignlab.train.rollout_source.RolloutSource`
that hands the loop its rollouts, and (when the loop starts it) its sampler, judge, reference and no-grad
scorer over the loop's policy and engine.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.data.batching import make_batch
from alignlab.data.prompts import PromptSetError, load_prompts
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.objectives.rollouts import RolloutPlan, plan_for
from alignlab.scoring.engine import Reference
from alignlab.train.checkpoint import latest_checkpoint
from alignlab.train.config import ConfigError, RunConfig
from alignlab.train.online_settings import OnlineSettings
from alignlab.train.reference import make_reference
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
    """The sampler backend named by ``online.sampler.backend``, sampling from ``policy`` itself."""
    from alignlab.generation import build_sampler as build

    try:
        return build(
            settings.sampler.backend, policy, tokenizer, batch_size=settings.sampler.batch_size,
            **settings.sampler.options,
        )  # fmt: skip
    except (ValueError, TypeError) as err:
        raise ConfigError(f"online.sampler: {err}") from None


def build_online_judge(settings: OnlineSettings) -> Any:
    from alignlab.judges.build import build_judge

    context = {}
    world = simulated_world(settings)
    if world is not None:
        context["world"] = world
    try:
        judge = build_judge(settings.judge, where="online.judge", **context)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not _gives_scores(judge):  # refused before any sampling, not at the first rollout
        name = getattr(judge, "name", type(judge).__name__)
        raise ConfigError(
            f"online.judge: '{name}' gives preferences between two completions (P(a ≻ b)), not the score "
            "per completion that online training needs; use a scoring judge (docs/judges.md). Preference "
            "judges serve `alignlab eval policies --judge` and `alignlab data label --mode pairs`"
        )
    return judge


def _gives_scores(judge: Any) -> bool:
    """Whether ``judge`` scores single completions: a :class:`Judge` whose ``score`` and ``score_batch`` are
    both the base class's (which raise) gives only preferences."""
    from alignlab.judges.base import Judge

    cls = type(judge)
    return (
        not isinstance(judge, Judge)
        or cls.score is not Judge.score
        or cls.score_batch is not Judge.score_batch
    )


def simulated_world(settings: OnlineSettings) -> Any:
    """The simulated world of ``online.world`` (or of ``prompts: sim:text-world[/SEED]``), or None. The
    simulation layer sits above train: it is reached by name, as a prompt source is."""
    spec = settings.world
    if spec is None and settings.prompts.startswith("sim:text-world"):
        _, _, seed = settings.prompts.partition("/")
        spec = {"seed": int(seed)} if seed.isdigit() else {}
    if spec is None:
        return None
    import importlib

    try:
        return importlib.import_module("alignlab.sim.online").world_from_settings(spec)
    except ValueError as err:
        raise ConfigError(f"online.world: {err}") from None


def rollout_source(config: RunConfig, objective: Any, note: Any = print) -> RolloutSource | None:
    """The run's rollout source when it trains online (an ``online:`` section and an online objective),
    None when it trains on fixed data; a mismatch between the two is a configuration error."""
    plan = online_plan(objective)
    if plan is not None and plan.records and config.online is None:
        return None  # an offline objective that can also train on rollouts (copg, a_lol), here offline
    if (plan is None) != (config.online is None):
        raise ConfigError(
            "an online objective (grpo, ppo, rloo, ...) needs an `online:` section (prompts, sampling, "
            "judge), and an `online:` section needs an online objective; see docs/online.md"
            if config.online is None
            else f"the `online:` section needs an online objective, but {', '.join(objective.names)} "
            "learn from fixed data; use e.g. objectives: [grpo], or remove the online section"
        )
    if plan is None:
        return None
    settings = config.online
    check_offline_mix(plan, settings, objective)
    apply_loss_aggregation(objective, settings)
    try:
        prompts = load_prompts(settings.prompts, settings.prompts_limit)
        source = source_class(plan)(settings, plan, prompts, config.train.seed, start=_bind)
        source.note = note
        return source
    except PromptSetError as err:
        raise ConfigError(f"online.prompts: {err}") from None
    except ValueError as err:
        raise ConfigError(str(err)) from None


def check_offline_mix(plan: RolloutPlan, settings: OnlineSettings, objective: Any) -> None:
    """``online.offline_per_step`` is for methods that train on ``data.train`` beside their rollouts, and
    those need it (a method of two classes with only one of them would be SFT on its own samples)."""
    names = ", ".join(objective.names)
    if plan.mixes_offline and settings.offline_per_step == 0:
        raise ConfigError(
            f"{names} on rollouts trains on fixed data (data.train) beside the policy's samples; set "
            "online.offline_per_step (groups of data.train per step, e.g. the rollout's "
            "prompts_per_rollout × sampling.n) and data.train (docs/online.md)"
        )
    if not plan.mixes_offline and settings.offline_per_step > 0:
        raise ConfigError(
            f"online.offline_per_step is {settings.offline_per_step}, but {names} trains on rollouts alone; "
            "remove online.offline_per_step (methods that mix data.train with rollouts: c_rlft)"
        )


def reads_offline_data(source: Any) -> bool:
    """Whether the run's rollout source also serves ``data.train`` (so the data section is loaded)."""
    return isinstance(source, RolloutSource) and source.plan.mixes_offline


def mix_offline_data(source: RolloutSource, data: Any, config: RunConfig) -> Any:
    """The rollout source with ``online.offline_per_step`` groups of the prepared ``data.train`` added to
    every step (``train/mixed_source.py``)."""
    from alignlab.train.mixed_source import MixedSource
    from alignlab.train.source import OfflineSource

    try:
        offline = OfflineSource(data, config.online.offline_per_step, config.train.seed)
    except ValueError as err:
        raise ConfigError(f"data.train: {err}") from None
    return MixedSource(source, offline)


def source_class(plan: RolloutPlan) -> type[RolloutSource]:
    """The rollout source a method's plan names: sampled rollouts, or Quark's data pool."""
    if plan.source == "quark_pool":
        from alignlab.train.rollout_quark import QuarkSource

        return QuarkSource
    if plan.source == "nlpo":
        from alignlab.train.rollout_nlpo import NLPOSource

        return NLPOSource
    if plan.source == "conditioned":
        from alignlab.train.rollout_conditioned import ConditionedRolloutSource

        return ConditionedRolloutSource
    if plan.source != "rollouts":
        raise ConfigError(
            f"unknown rollout source '{plan.source}' (expected rollouts, quark_pool, nlpo or conditioned)"
        )
    return RolloutSource


def _bind(source: RolloutSource, context: Any) -> None:
    """``RolloutSource.start``: the sampler, judge, reference and scorer over the loop's parts."""
    config, settings, plan = context.config, source.settings, source.plan
    reference = None
    kl_coef = settings.kl.coef if settings.kl is not None else plan.kl_coef
    if kl_coef > 0 or plan.needs_reference:
        if config.model.lora is not None and settings.reference_update.mode != "frozen":
            raise ConfigError(
                "online.reference_update must be frozen with model.lora (the reference is the base model "
                "with the adapters switched off)"
            )
        reference = make_reference(config, context.policy, context.callbacks, source.note)
        why = f"KL coefficient {kl_coef:g}" if kl_coef > 0 else "the method scores against it"
        source.note(f"reference policy loaded for the rollouts ({why})")
    else:
        source.note("no reference policy: the rollouts carry no KL term (KL coefficient 0)")
    if plan.needs_values:
        attach_value_head(context.policy, source.note)
    if plan.source == "nlpo":
        if settings.sampler.backend != "hf" or context.reference is None or context.reference.adapters_off:
            raise ConfigError(
                "nlpo samples through the hf sampler (online.sampler.backend: hf) and keeps its masking "
                "policy as a full frozen copy of the policy (no model.lora)"
            )
    checkpoints = config.run_dir / "checkpoints"
    try:
        source.bind(
            context.tokenizer,
            build_sampler(settings, context.policy, context.tokenizer),
            build_online_judge(settings),
            RolloutScorer(context, reference, masked=plan.source == "nlpo"),
            policy=context.unwrapped_policy,
            reference=lambda: (
                reference.model if reference is not None and not reference.adapters_off else None
            ),
            note=source.note,
            last_checkpoint=lambda: latest_checkpoint(checkpoints),
        )
        if plan.source == "nlpo":  # the trainer's reference slot becomes the masking policy π_ψ
            source.attach_mask_model(context.reference.model, context.tokenizer)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def attach_value_head(policy: Any, note: Any) -> None:
    """PPO's critic: a value head on the policy's hidden states (``models/value_head.py``), attached before
    the optimiser is built, so it trains with the policy and is saved with it (``value_head.*``)."""
    from alignlab.models.parts import unwrap
    from alignlab.models.value_head import ValueHead

    base = unwrap(policy)
    if getattr(base, "value_head", None) is None:
        base.value_head = ValueHead(base.config.hidden_size).to(next(base.parameters()).device)
        note("ppo: a value head is attached to the policy (trained and saved with it as value_head.*)")


class RolloutScorer:
    """Step 5 of a refresh: one no-grad engine pass over the rollout for the sampling policy's per-token
    log-probs (and a critic's values), and one over the reference for its log-probs. With ``want_old``
    False and no values the policy pass is skipped (the mask is the completions' lengths)."""

    def __init__(self, context: Any, reference: Reference | None, masked: bool = False):
        # masked (NLPO): the sampling policy's log-probs on the masking policy's nucleus (the trainer's
        # reference slot holds the masking policy), the support the sampler drew from
        self.context, self.reference, self.masked = context, reference, masked

    @torch.no_grad()
    def __call__(
        self,
        records: list[Record],
        groups: list[TokenizedGroup],
        want_reference: bool,
        want_values: bool,
        want_old: bool = True,
    ) -> dict[str, Tensor]:
        c = self.context
        tc = c.config.train
        width = max(len(x) for g in groups for x in g.completion_ids)
        out: dict[str, list[Tensor]] = {"old_logps": [], "mask": [], "ref_logps": [], "old_values": []}
        size = 4 * (tc.micro_batch_size or max(1, len(groups)))
        scorer = c.accelerator.unwrap_model(c.scorer)
        needs = frozenset(
            {"token_logps"}
            | ({"token_values"} if want_values else set())
            | ({"token_logps_ref_support"} if self.masked else set())
        )
        support = c.reference if self.masked else None
        for start in range(0, len(groups), size):
            chunk = groups[start : start + size]
            batch = make_batch(records, chunk, c.layout, tc.tokens_per_row, c.pad_id).to(c.device)
            out["mask"].append(_length_mask(chunk, width))
            if want_old or want_values:
                with c.accelerator.autocast():
                    scores = scorer(batch, needs, support, None)
            if want_old:
                old = scores.token_logps_ref_support if self.masked else scores.token_logps
                out["old_logps"].append(_pad(old, width))
            if want_values:
                out["old_values"].append(_pad(scores.extra["token_values"], width))
            if want_reference:
                if self.reference is None:
                    raise ConfigError("the KL term needs a reference policy, but none is loaded")
                ref = c.engine.reference_scores(self.reference, batch, frozenset({"token_logps"}))
                out["ref_logps"].append(_pad(ref.token_logps, width))
        return {k: torch.cat(v).float().cpu() for k, v in out.items() if v}


def _length_mask(groups: list[TokenizedGroup], width: int) -> Tensor:
    """[completions, width]: 1 at each completion's tokens, 0 after (the engine's token mask, padded)."""
    lengths = torch.tensor([len(c) for g in groups for c in g.completion_ids])
    return (torch.arange(width)[None, :] < lengths[:, None]).float()


def _pad(values: Tensor, width: int) -> Tensor:
    return torch.nn.functional.pad(values.detach(), (0, width - values.shape[1]))
