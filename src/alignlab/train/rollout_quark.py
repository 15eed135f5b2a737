"""Quark's rollout source (Lu et al. 2022, arXiv 2205.13636): a data pool of every sample so far, ranked into
reward quantiles, served with each sample's quantile tag before its prompt.

A refresh, top to bottom:

1. take the next ``prompts_per_rollout`` prompts;
2. explore: sample ``n`` completions per prompt from the policy conditioned on the BEST quantile's tag
   (``<|quark_0|>`` before the prompt);
3. judge them on the prompt without the tag (the judge sees the task, not the control tag); shape the rewards
   (missing-EOS penalty, normalisation, clipping) as every online method does;
4. add every (prompt, completion ids, reward) to the pool; re-rank the WHOLE pool into K quantiles
   (``objectives.quark.quantile_ids``: sorted by reward, ⌊N/K⌋ per quantile, the remainder in the last);
5. serve ``prompts_per_rollout × n`` samples drawn from the pool (seeded, without replacement), each with
   its current quantile's tag before its prompt, for ``epochs_per_rollout × minibatches`` steps; the
   ``quark`` objective's loss is the NLL of the completion given the tagged prompt plus β·KL − α·H.

Checked: GXimingLu/Quark main.py (``ConditionTrainer``: sample with the best reward token, ``DataPool.add``,
training batches drawn from the pool with their quantile tokens), data_pool.py. The pool, the prompt position
and every seed are in ``state_dict()``, so a resumed run continues the same pool.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup, TokenizeReport, encode_prompts
from alignlab.objectives.quark import quantile_ids, quark_tokens
from alignlab.objectives.record_rewrites import prefix_prompt
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
        # the pool: prompt row index, completion ids, completion text, shaped reward (in arrival order)
        self.pool: list[tuple[int, list[int], str, float]] = []
        self._tagged: dict[tuple[int, int], list[int]] = {}

    def tagged_prompt_ids(self, row: int, quantile: int) -> list[int]:
        """Token ids of prompt ``row`` with quantile ``quantile``'s tag before it (encoded once)."""
        key = (row, quantile)
        if key not in self._tagged:
            prompt = prefix_prompt(self.rows[row].prompt, self.tags[quantile] + " ")
            self._tagged[key] = encode_prompts(self.tokenizer, [prompt])[0][0]
        return self._tagged[key]

    @torch.no_grad()
    def refresh(self, step: int = 0) -> None:
        start = time.perf_counter()
        settings = self.settings
        # 1. prompts; 2. explore with the best quantile's tag
        chosen = self._next_prompts()
        rows = [self.rows[i] for i in chosen]
        self.sampler.sync(self.policy())
        params = settings.sampling.model_copy(update={"seed": self._sampling_seed()})
        rollouts = self.sampler.sample([self.tagged_prompt_ids(i, 0) for i in chosen], params)
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
            self.pool.append((row, list(rollout.completion_ids), rollout.text, float(shaped[j])))
        quantiles = quantile_ids([item[3] for item in self.pool], self.num_quantiles)
        # 5. serve a draw from the pool, each sample with its quantile's tag
        size = min(len(self.pool), settings.prompts_per_rollout * params.n)
        drawn = sorted(self._order(len(self.pool), 104_729 * (self.refreshes + 1))[:size])
        records, groups = [], []
        for g, index in enumerate(drawn):
            row, ids, text, reward = self.pool[index]
            k = quantiles[index]
            records.append(
                Record(prefix_prompt(self.rows[row].prompt, self.tags[k] + " "), [text], source="quark")
            )
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
                f"sample (rollout {self.refreshes}, {self.tags[0]}): {rollouts[j].text[:80]!r} "
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
