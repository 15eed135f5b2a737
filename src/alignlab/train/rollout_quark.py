"""Quark's rollout source (Lu et al. 2022, arXiv 2205.13636): a data pool of every sample so far, ranked into
reward quantiles, served with each sample's quantile tag before its prompt.

At the start the K tags ``<|quark_0|>`` (best) … ``<|quark_{K-1}|>`` become new vocabulary entries of the
policy and its tokenizer (``models/control_tokens.py``: special tokens, new embedding rows drawn from the
existing rows' per-dimension mean and std), and the reference is told not to see them: it scores each
completion after the prompt WITHOUT the tag (``scoring/reference_view.py``). A refresh, top to bottom:

1. take the next ``prompts_per_rollout`` prompts;
2. explore: sample ``n`` completions per prompt — the first refresh from the prompt alone (the policy is
   still the reference), later ones conditioned on the BEST quantile's tag, one token before the prompt's
   ids; tag tokens the policy writes into a completion are dropped from it (the official code decodes the
   response with ``skip_special_tokens`` and re-encodes it);
3. judge them on the prompt without the tag; shape the rewards (missing-EOS penalty, normalisation,
   clipping) as every online method does;
4. add every (prompt, completion ids, reward) to the pool; re-rank the WHOLE pool into K quantiles
   (``objectives.quark.quantile_ids``: sorted by reward, ⌊N/K⌋ per quantile, the remainder in the last);
5. serve ``prompts_per_rollout × n`` samples drawn from the pool (seeded, without replacement), each with
   its current quantile's tag token before its prompt's ids, for ``epochs_per_rollout × minibatches``
   steps; the ``quark`` objective's loss is the NLL of the completion given the tagged prompt plus β·KL
   (to the reference on the untagged prompt) − α·H.

Checked: GXimingLu/Quark main.py (``ConditionTrainer.sample``: step 0 samples the reference without a tag,
later steps ``add_control_code`` puts the best tag's id first; ``SequenceCollator`` puts each pool sample's
tag id before its query; ``loss``: the reference gets ``query_input_ids[:, 1:]``), data_pool.py, policy.py
(the new tokens). The pool, the prompt position and every seed are in ``state_dict()``, so a resumed run
continues the same pool.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup, TokenizeReport
from alignlab.models.control_tokens import add_control_tokens
from alignlab.objectives.quark import quantile_ids, quark_tokens
from alignlab.objectives.record_rewrites import prefix_prompt
from alignlab.train.config import ConfigError
from alignlab.train.data import PreparedData
from alignlab.train.reward_shaping import shape_rewards
from alignlab.train.rollout_judging import judge_rewards
from alignlab.train.rollout_source import RolloutSource


class QuarkSource(RolloutSource):
    """See the module docstring; ``num_quantiles`` (K) comes from the ``quark`` objective."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.num_quantiles = int(self.plan.source_params.get("num_quantiles", 5))
        self.tags = quark_tokens(self.num_quantiles)
        self.tag_ids: list[int] = []  # the tags' token ids, set by start()
        # the pool: prompt row index, completion ids, completion text, shaped reward (in arrival order)
        self.pool: list[tuple[int, list[int], str, float]] = []

    def start(self, context: Any) -> None:
        """Before the optimiser is built: the tags become vocabulary entries of the policy and tokenizer (the
        reference, copied before, keeps its vocabulary), and the reference stops seeing them."""
        if context.config.model.lora is not None:
            raise ConfigError(
                "quark trains new embedding rows for its reward tags, which model.lora would freeze at their "
                "random start; train quark without model.lora"
            )
        self.tag_ids = add_control_tokens(
            context.policy, context.tokenizer, self.tags, seed=context.config.train.seed
        )
        if context.reference is not None:
            context.reference.hidden_ids = tuple(self.tag_ids)
        super().start(context)

    def tagged_prompt_ids(self, row: int, quantile: int) -> list[int]:
        """Token ids of prompt ``row`` with quantile ``quantile``'s tag token first (Quark's control code)."""
        return [self.tag_ids[quantile], *self.prompt_ids[row]]

    @torch.no_grad()
    def refresh(self, step: int = 0) -> None:
        start = time.perf_counter()
        settings = self.settings
        # 1. prompts; 2. explore: the first time from the prompt alone, then with the best quantile's tag
        chosen = self._next_prompts()
        rows = [self.rows[i] for i in chosen]
        self.sampler.sync(self.policy())
        params = settings.sampling.model_copy(update={"seed": self._sampling_seed()})
        explore = self.tagged_prompt_ids if self.pool else (lambda i, _: self.prompt_ids[i])
        rollouts = self.sampler.sample([explore(i, 0) for i in chosen], params)
        sampled = time.perf_counter()
        # 3. judge on the untagged prompt, shape
        rewards = judge_rewards(
            self.judge, rows, rollouts, params.n, step, self.last_checkpoint(), where="online.judge"
        )
        finished = torch.tensor([r.finished for r in rollouts])
        shaped = shape_rewards(rewards, finished, settings.reward, self.running)
        # 4. into the pool; re-rank the whole pool
        for j, rollout in enumerate(rollouts):
            row = chosen[j // params.n]
            ids = [t for t in rollout.completion_ids if t not in self.tag_ids]
            if ids:  # a completion of tags alone leaves nothing to train on
                self.pool.append((row, ids, rollout.text, float(shaped[j])))
        quantiles = quantile_ids([item[3] for item in self.pool], self.num_quantiles)
        # 5. serve a draw from the pool, each sample with its quantile's tag
        size = min(len(self.pool), settings.prompts_per_rollout * params.n)
        drawn = sorted(self._order(len(self.pool), 104_729 * (self.refreshes + 1))[:size])
        records, groups = [], []
        for g, index in enumerate(drawn):
            row, ids, text, reward = self.pool[index]
            k = quantiles[index]
            records.append(Record(prefix_prompt(self.rows[row].prompt, self.tags[k]), [text], source="quark"))
            rollout = {"rewards": torch.tensor([reward]), "quantile": torch.tensor([float(k)])}
            groups.append(
                TokenizedGroup(self.tagged_prompt_ids(row, k), [ids], [[]], [""], g, rollout=rollout)
            )
        self.data = PreparedData(records, groups, TokenizeReport(records=len(groups), kept=len(groups)))
        self.refreshes += 1
        self.served = 0
        self._report(rollouts, rewards, finished, start, sampled, {})
        served_rewards = torch.tensor([self.pool[i][3] for i in drawn])
        self.metrics.update(
            {
                "quark/pool_size": float(len(self.pool)),
                "quark/served_reward": float(served_rewards.mean()),
                "quark/best_quantile_share": float(sum(quantiles[i] == 0 for i in drawn) / max(size, 1)),
            }
        )

    def _log_samples(self, rollouts: Any, rewards: Any) -> None:
        """Quark logs the fresh samples (conditioned on the best tag) with their rewards."""
        for j in range(min(2, len(rollouts))):
            self.note(
                f"sample (rollout {self.refreshes}, {self.tags[0] if self.refreshes > 1 else 'no tag'}): "
                f"{rollouts[j].text[:80]!r} "
                f"(reward {float(rewards[j]):.3f})"
            )

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["quark_pool"] = [list(item) for item in self.pool]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pool = [
            (int(r), [int(t) for t in ids], str(text), float(w)) for r, ids, text, w in state["quark_pool"]
        ]
