"""The rollout source: the batch source of online training. Each refresh samples completions from the
current policy, has them judged and turns the rewards into advantages; the loop then trains on that
rollout for ``epochs_per_rollout × minibatches`` steps before the next refresh.

A refresh, top to bottom:

1. take the next ``prompts_per_rollout`` prompts (seeded epochs over the prompt set);
2. sample ``n`` completions per prompt from the policy (the sampler is synced to its weights first);
3. build records and tokenised groups from the SAMPLED ids (EOS kept when emitted; nothing re-tokenised);
4. judge: the judge scores every completion, with its token ids, its prompt row's other columns (e.g. a
   ground-truth ``answer``) and the step; a judge that raises or returns NaN/inf stops the run;
5. one no-grad engine pass: the sampling policy's per-token log-probs (``old_logps``), the reference's
   (``ref_logps``, when a KL term needs them) and the critic's values (PPO). ``old_logps`` are skipped
   when the rollout is trained on once, at the weights that sampled it (``epochs_per_rollout ×
   minibatches = 1``) and no KL in the reward reads them: then π_old = π_θ and the loss takes
   ``token_logps.detach()`` (``RolloutBatch.get``), as TRL does; the same loss and gradients (a test);
6. reward shaping: missing-EOS penalty, normalisation, clipping, then the KL penalty in the token rewards;
7. advantages with the method's estimator (``objectives.advantages.ADVANTAGES``);
8. serve: ``next()`` returns one minibatch of whole prompt groups per step (a ``StepBatch``), in a seeded
   order per epoch.

It is the loop's :class:`~alignlab.train.source.BatchSource`: ``start(context)`` receives the policy, the
engine and the accelerator (``online_setup.bind`` builds the sampler, judge, reference and scorer from
them), ``next()`` refreshes when the live rollout has been served. Everything a resumed run needs — prompt position, refresh count, the live rollout, the steps served from
it, the KL controller, running reward moments, a moving reference's weights — is in ``state_dict()``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from alignlab.data.prompts import PromptRow
from alignlab.data.tokenize import TokenizeReport, encode_prompts
from alignlab.generation.types import Rollout
from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs
from alignlab.objectives.kl_control import kl_controller
from alignlab.objectives.rollouts import RolloutPlan
from alignlab.train.data import PreparedData
from alignlab.train.online_settings import KLSettings, OnlineSettings
from alignlab.train.reward_shaping import RunningMoments, shape_rewards
from alignlab.train.rollout_judging import judge_rewards, rate_records
from alignlab.train.rollout_kl import kl_in_reward, move_reference
from alignlab.train.rollout_records import rollout_from_state, rollout_groups, rollout_state
from alignlab.train.rollout_token_rewards import judge_token_rewards, pad_token_rewards
from alignlab.train.source import StepBatch

# (records, groups, want_reference, want_values, want_old=True) -> flat per-token tensors [N, T]: "mask",
# and "old_logps" / "ref_logps" / "old_values" when asked for. The trainer implements it with its engine.
RolloutScorer = Callable[..., dict[str, Tensor]]


class RolloutSource:
    """See the module docstring. Built from settings and prompts; :meth:`bind` (called from ``start``) gives
    it the ``tokenizer``, ``sampler``, ``judge`` and ``scorer``, ``policy`` (returns the unwrapped policy),
    ``reference`` (returns the reference model or None), ``note`` (a line to the run log) and
    ``last_checkpoint`` (names the last checkpoint for error messages)."""

    def __init__(
        self,
        settings: OnlineSettings,
        plan: RolloutPlan,
        prompts: list[PromptRow],
        seed: int = 0,
        start: Callable[[RolloutSource, Any], None] | None = None,
    ):
        self.settings, self.plan, self.prompts, self.seed = settings, plan, prompts, seed
        self._start = start
        self.step = 1  # the optimiser step the next batch trains (judges receive it)
        self.kl = settings.kl or KLSettings(coef=plan.kl_coef, estimator=plan.kl_estimator)  # type: ignore[arg-type]
        adaptive = self.kl.adaptive
        self.kl_control = kl_controller(
            self.kl.coef, adaptive.target if adaptive else None, adaptive.horizon if adaptive else 10000
        )
        advantage = settings.advantage
        self.advantage = ADVANTAGES.bind(
            advantage.name if advantage else plan.advantage,
            advantage.params if advantage else plan.advantage_params,
            where="online.advantage: ",
        )
        if settings.sampling.n < plan.min_samples:
            raise ValueError(
                f"online.sampling.n is {settings.sampling.n} but this method compares at least "
                f"{plan.min_samples} completions of each prompt; set online.sampling.n >= {plan.min_samples}"
            )
        self.running = RunningMoments()
        self.prompt_epoch = self.prompt_offset = 0
        self.refreshes = 0  # refreshes done
        self.served = 0  # steps served from the live rollout
        self.data: PreparedData | None = None  # the live rollout
        self.metrics: dict[str, float] = {}
        self._eos_warnings = 0

    # ----------------------------------------------------------------------------- loop protocol
    def start(self, context: Any) -> None:
        """The loop's parts are ready: bind the sampler, judge, reference and scorer (``online_setup``)."""
        if self._start is not None:
            self._start(self, context)

    def bind(
        self,
        tokenizer: Any,
        sampler: Any,
        judge: Any,
        scorer: RolloutScorer,
        policy: Callable[[], Any],
        reference: Callable[[], Any],
        note: Callable[[str], None] = print,
        last_checkpoint: Callable[[], Any] = lambda: None,
    ) -> None:
        self.tokenizer, self.sampler, self.judge, self.scorer = tokenizer, sampler, judge, scorer
        self.policy, self.reference = policy, reference
        self.note, self.last_checkpoint = note, last_checkpoint
        self.rows, self.prompt_ids = self._encode(self.prompts)

    def planned_steps(self, epochs: float) -> int:
        """``epochs`` passes over the prompt set, in rollouts of ``prompts_per_rollout`` prompts."""
        rollouts = max(1, math.ceil(epochs * len(self.prompts) / self.settings.prompts_per_rollout))
        return rollouts * self.settings.steps_per_rollout

    def after_optimizer_step(self, step: int) -> None:
        """Refreshes happen lazily, in the ``next()`` after the live rollout has been served."""
        self.step = step + 1

    # ----------------------------------------------------------------------------------- prompts
    def _encode(self, prompts: list[PromptRow]) -> tuple[list[PromptRow], list[list[int]]]:
        """Tokenise every prompt once; prompts over ``max_prompt_length`` are reported and left out."""
        encoded = encode_prompts(self.tokenizer, [row.prompt for row in prompts])
        limit = self.settings.max_prompt_length
        kept = [i for i, (ids, _) in enumerate(encoded) if len(ids) <= limit]
        too_long = [i for i in range(len(prompts)) if i not in set(kept)]
        if too_long:
            first = prompts[too_long[0]].prompt
            self.note(
                f"online: {len(too_long)} of {len(prompts)} prompts are longer than online.max_prompt_length "
                f"({limit} tokens) and are left out, not cut (e.g. prompt {too_long[0]}, "
                f"{len(encoded[too_long[0]][0])} tokens: {str(first)[:60]!r}); raise max_prompt_length to keep them"
            )
        if not kept:
            raise ValueError(
                f"online.prompts: every prompt is longer than online.max_prompt_length ({limit})"
            )
        return [prompts[i] for i in kept], [encoded[i][0] for i in kept]

    def _next_prompts(self) -> list[int]:
        out: list[int] = []
        count = len(self.rows)
        while len(out) < self.settings.prompts_per_rollout:
            if self.prompt_offset >= count:
                self.prompt_epoch, self.prompt_offset = self.prompt_epoch + 1, 0
            order = self._order(count, 7_919 * self.prompt_epoch)
            take = min(self.settings.prompts_per_rollout - len(out), count - self.prompt_offset)
            out += order[self.prompt_offset : self.prompt_offset + take]
            self.prompt_offset += take
        return out

    def _order(self, count: int, salt: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + salt)
        return torch.randperm(count, generator=generator).tolist()

    @property
    def epochs_done(self) -> float:
        return self.prompt_epoch + self.prompt_offset / len(self.rows)

    # ------------------------------------------------------------------------------------- serve
    def next(self) -> StepBatch:
        """The next step's minibatch of prompt groups from the live rollout; refreshes when it is served."""
        ids = self.next_ids()
        groups = [self.data.groups[i] for i in ids]
        return StepBatch(self.data.records, groups, reference_rows=None, metrics=dict(self.metrics))

    def next_ids(self) -> list[int]:
        """The group ids (into ``self.data``) of the next step's minibatch; refreshes when due."""
        if self.data is None or self.served >= self.settings.steps_per_rollout:
            self.refresh(self.step)
        minibatches = self.settings.minibatches
        epoch, part = divmod(self.served, minibatches)
        groups = len(self.data.groups)
        order = (
            self._order(groups, 104_729 * self.refreshes + epoch) if minibatches > 1 else list(range(groups))
        )
        size = groups // minibatches
        self.served += 1
        return sorted(order[part * size : (part + 1) * size])

    # ----------------------------------------------------------------------------------- refresh
    @torch.no_grad()
    def refresh(self, step: int = 0) -> None:
        start = time.perf_counter()
        settings = self.settings
        move_reference(self.reference(), self.policy, self.settings.reference_update, self.refreshes)
        # 1. prompts
        chosen = self._next_prompts()
        rows = [self.rows[i] for i in chosen]
        prompt_ids = [self.prompt_ids[i] for i in chosen]
        # 2. sample n completions per prompt
        self.sampler.sync(self.sampling_model())
        params = settings.sampling.model_copy(update={"seed": self._sampling_seed()})
        rollouts = self.sampler.sample(prompt_ids, params)
        sampled = time.perf_counter()
        # 3. records and groups from the sampled ids
        records, groups = rollout_groups(rows, rollouts, params.n)
        finished = torch.tensor([r.finished for r in rollouts])
        # 4. judge
        dense = None
        if self.plan.token_rewards:  # Fine-Grained RLHF: one reward per completion token
            dense = judge_token_rewards(self.judge, rows, rollouts, params.n, step)
            rewards = torch.stack([d.sum() for d in dense])
        else:
            rewards = judge_rewards(
                self.judge, rows, rollouts, params.n, step, self.last_checkpoint(), where="online.judge"
            )
        if self.plan.records == "ratings":  # an offline objective (copg, a_lol) reads them as its feedback
            rate_records(records, rewards, params.n)
        baseline = self._greedy_baseline(rows, prompt_ids, step) if self.plan.greedy_baseline else None
        # 5. one no-grad engine pass: old log-probs, reference log-probs, values
        want_reference = self.kl_control.value > 0 or self.plan.needs_reference
        scored = self.scorer(
            records, groups, want_reference, self.plan.needs_values, want_old=not self.on_policy_update
        )
        # 6. reward shaping (outcome), then KL into the token rewards
        shaped = shape_rewards(rewards, finished, settings.reward, self.running)
        g, k = len(rows), params.n
        mask = scored["mask"].reshape(g, k, -1)
        # dense token rewards go in as given (outcome shaping does not apply to them)
        given = shaped.reshape(g, k) if dense is None else pad_token_rewards(dense, tuple(mask.shape))
        token_rewards, kl_metrics = kl_in_reward(given, scored, mask, self.kl_control, self.kl.estimator)
        # 7. advantages
        values = scored["old_values"].reshape(g, k, -1) if self.plan.needs_values else None
        advantages, returns = self.advantage(AdvantageInputs(token_rewards, mask, values, baseline))
        # 8. keep the rollout to serve
        per_completion = {
            "advantages": advantages.reshape(g * k, -1).float(),
            "returns": returns.reshape(g * k, -1).float(),
            "length_norm": torch.full((g * k,), float(params.max_new_tokens)),
            # the judge's own rewards, before shaping: what objectives that learn from levels or
            # correctness read (drpo, trpa)
            "rewards": rewards.float(),
        }
        for name in ("old_logps", "ref_logps"):
            if name in scored:
                per_completion[name] = scored[name]
        if values is not None:
            per_completion["old_values"] = scored["old_values"]
        for i, group in enumerate(groups):
            group.rollout = {name: t[i * k : (i + 1) * k] for name, t in per_completion.items()}
        self.data = PreparedData(records, groups, TokenizeReport(records=g, kept=g))
        self.refreshes += 1
        self.served = 0
        self._report(rollouts, rewards, finished, start, sampled, kl_metrics)

    @property
    def on_policy_update(self) -> bool:
        """Each rollout is trained on once, at the weights that sampled it, and no KL in the reward reads
        the sampling policy's log-probs: the old-log-prob pass is skipped (π_old = π_θ, detached)."""
        kl_in_reward = self.kl.coef > 0 or self.kl.adaptive is not None or self.kl_control.value > 0
        return self.settings.steps_per_rollout == 1 and not kl_in_reward

    def sampling_model(self) -> Any:
        """What the sampler draws from: the policy (NLPO: the policy restricted to its masking nucleus)."""
        return self.policy()

    def _sampling_seed(self) -> int:
        return (self.seed * 1_000_003 + self.refreshes * 7_919 + self.settings.sampling.seed) % (2**31)

    def _greedy_baseline(self, rows: list[PromptRow], prompt_ids: list[list[int]], step: int) -> Tensor:
        """ReMax's baseline: the reward of each prompt's greedy completion [G]."""
        params = self.settings.sampling.model_copy(update={"n": 1, "temperature": 0.0})
        greedy = self.sampler.sample(prompt_ids, params)
        rewards = judge_rewards(
            self.judge, rows, greedy, 1, step, self.last_checkpoint(), where="online.judge (greedy baseline)"
        )
        finished = torch.tensor([r.finished for r in greedy])
        return shape_rewards(rewards, finished, self.settings.reward, RunningMoments())

    def _report(
        self,
        rollouts: list[Rollout],
        rewards: Tensor,
        finished: Tensor,
        start: float,
        sampled: float,
        kl_metrics: dict[str, float],
    ) -> None:
        elapsed = time.perf_counter() - start
        lengths = torch.tensor([len(r.completion_ids) for r in rollouts], dtype=torch.float)
        eos_rate = float(finished.float().mean())
        self.metrics = {
            "reward/mean": float(rewards.mean()),
            "reward/std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
            "completion_length": float(lengths.mean()),
            "eos_rate": eos_rate,
            "samples_per_s": len(rollouts) / max(sampled - start, 1e-9),
            "rollout/seconds": elapsed,
            "rollout/index": float(self.refreshes),
            **kl_metrics,
        }
        if 1 - eos_rate > self.settings.max_no_eos_fraction:
            if self._eos_warnings % 10 == 0:
                self.note(
                    f"online: {100 * (1 - eos_rate):.0f}% of the completions of rollout {self.refreshes} hit "
                    f"max_new_tokens ({self.settings.sampling.max_new_tokens}) without EOS; raise "
                    "online.sampling.max_new_tokens, check the chat template / stop tokens, or penalise it "
                    "with online.reward.missing_eos_penalty"
                )
            self._eos_warnings += 1
        every = self.settings.log_samples_every
        if every and (self.refreshes - 1) % every == 0:
            self._log_samples(rollouts, rewards)

    def _log_samples(self, rollouts: list[Rollout], rewards: Tensor) -> None:
        data = self.data
        n = len(data.groups[0].completion_ids)
        for g in range(min(2, len(data.records))):
            record = data.records[g]
            self.note(
                f"sample (rollout {self.refreshes}): {record.prompt_text()[:80]!r} -> "
                f"{record.completions[0][:80]!r} (reward {float(rewards[g * n]):.3f})"
            )

    # ------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "prompt_epoch": self.prompt_epoch,
            "prompt_offset": self.prompt_offset,
            "refreshes": self.refreshes,
            "served": self.served,
            "kl_control": self.kl_control.state_dict(),
            "running": self.running.state_dict(),
            "eos_warnings": self._eos_warnings,
            "metrics": dict(self.metrics),
        }
        if self.data is not None:
            state["rollout"] = rollout_state(self.data)
        reference = self.reference()
        if self.settings.reference_update.mode != "frozen" and reference is not None:
            state["reference"] = {k: v.detach().clone() for k, v in reference.state_dict().items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prompt_epoch, self.prompt_offset = int(state["prompt_epoch"]), int(state["prompt_offset"])
        self.refreshes, self.served = int(state["refreshes"]), int(state["served"])
        self.step = int(state["step"])
        self.kl_control.load_state_dict(state["kl_control"])
        self.running.load_state_dict(state["running"])
        self._eos_warnings = int(state["eos_warnings"])
        self.metrics = dict(state["metrics"])
        live = state.get("rollout")
        if live is not None:
            self.data = rollout_from_state(live)
        reference = self.reference()
        if "reference" in state and reference is not None:
            reference.load_state_dict(state["reference"])
