"""NLPO's rollout source (Ramamurthy et al. 2022, RL4LMs): PPO's, with every sample drawn from the policy
restricted to the top-p nucleus of a masking policy π_ψ, and the same nucleus applied when the engine scores.

One mask, one place: π_ψ (the trainer's reference slot holds it: a frozen copy of the policy) gets a
:class:`NucleusHead` — its LM head with every token outside its own top-p nucleus at −∞
(``objectives.nlpo_mask.nucleus_action_mask`` on its logits at the sampling temperature; special ids always
kept). The sampler draws from :class:`NucleusMaskedLM` (the policy's logits at −∞ wherever π_ψ's head put
−∞), and the engine's ``token_logps_ref_support`` renormalises the policy over the tokens π_ψ's head left
finite, so the sampled log-probs and the trained ones live on the same support (ratios start at 1).
π_ψ is re-copied from the policy before every ``update_every``-th rollout is sampled (``mask_policy_due``);
its weights are in ``state_dict()``. The KL to π_ref in the reward uses the source's own reference.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from alignlab.models.parts import body_and_head, unwrap
from alignlab.objectives.nlpo_mask import mask_policy_due, nucleus_action_mask
from alignlab.train.rollout_source import RolloutSource


class NucleusHead(nn.Module):
    """An LM head whose logits are −∞ outside the top-p nucleus of its own distribution at ``temperature``."""

    def __init__(self, head: nn.Module, top_p: float, temperature: float, keep_ids: list[int]):
        super().__init__()
        self.head, self.top_p, self.temperature, self.keep_ids = head, top_p, temperature, list(keep_ids)

    def forward(self, hidden: Tensor) -> Tensor:
        logits = self.head(hidden)
        allowed = nucleus_action_mask(
            logits.float() / self.temperature, self.top_p, always_keep_ids=self.keep_ids
        )
        return logits.masked_fill(~allowed, float("-inf"))


class PairCache:
    """The policy's and the masking policy's KV caches, expanded and cut together (the hf sampler's calls)."""

    def __init__(self, policy: Any, mask: Any):
        self.policy, self.mask = policy, mask

    def batch_repeat_interleave(self, n: int) -> None:
        self.policy.batch_repeat_interleave(n)
        self.mask.batch_repeat_interleave(n)

    def batch_select_indices(self, rows: Tensor) -> None:
        self.policy.batch_select_indices(rows)
        self.mask.batch_select_indices(rows)


class _Output:
    def __init__(self, logits: Tensor, past_key_values: PairCache):
        self.logits, self.past_key_values = logits, past_key_values


def _cache_argument(model: Any) -> str:
    names = set(inspect.signature(model.forward).parameters)
    return "cache" if "cache" in names else "past_key_values"


class NucleusMaskedLM(nn.Module):
    """What the sampler draws from: the policy's next-token logits, −∞ wherever the masking policy's
    :class:`NucleusHead` put −∞. The masking model is held outside the module tree (it stays frozen, in
    eval mode, and its weights are not the policy's)."""

    def __init__(self, policy: nn.Module, mask_model: nn.Module):
        super().__init__()
        self.policy = policy
        self._mask = (mask_model,)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: PairCache | None = None,
        use_cache: bool = True,
        logits_to_keep: int = 0,
    ) -> _Output:
        mask_model = self._mask[0]
        outputs = []
        for model, past in (
            (self.policy, past_key_values.policy if past_key_values is not None else None),
            (mask_model, past_key_values.mask if past_key_values is not None else None),
        ):
            name = _cache_argument(model)
            kwargs: dict[str, Any] = {name: past}
            if "logits_to_keep" in inspect.signature(model.forward).parameters:
                kwargs["logits_to_keep"] = logits_to_keep
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=use_cache, **kwargs)  # fmt: skip
            outputs.append((out.logits, out.cache if hasattr(out, "cache") else out.past_key_values))
        (logits, policy_cache), (mask_logits, mask_cache) = outputs
        masked = logits.masked_fill(~torch.isfinite(mask_logits), float("-inf"))
        return _Output(masked, PairCache(policy_cache, mask_cache))


class NLPOSource(RolloutSource):
    """See the module docstring; ``top_p`` and ``update_every`` (μ) come from the ``nlpo`` objective."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.top_p = float(self.plan.source_params.get("top_p", 0.9))
        self.update_every = int(self.plan.source_params.get("update_every", 20))
        self.mask_model: Any = None
        self._mask_params: dict[str, nn.Parameter] = {}
        self._pending: dict[str, Tensor] | None = None  # π_ψ's weights from a checkpoint, before attach

    def attach_mask_model(self, model: Any, tokenizer: Any) -> None:
        """Make ``model`` (a frozen copy of the policy, the trainer's reference slot) the masking policy."""
        base = unwrap(model)
        config = base.config
        if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
            raise ValueError(
                "nlpo: models with final-logit softcapping or a logit scale are not supported (the nucleus "
                "head's −∞ would not survive the engine's transform)"
            )
        self._mask_params = dict(base.named_parameters())
        _, head = body_and_head(base)
        temperature = self.settings.sampling.temperature or 1.0
        keep = sorted({i for i in (tokenizer.all_special_ids or []) if i is not None})
        base.set_output_embeddings(NucleusHead(head, self.top_p, temperature, keep))
        self.mask_model = base
        self.copy_policy_into_mask()
        if self._pending is not None:
            self._load_mask(self._pending)

    @torch.no_grad()
    def copy_policy_into_mask(self) -> None:
        source = dict(unwrap(self.policy()).named_parameters())
        for name, param in self._mask_params.items():
            param.copy_(source[name].detach().to(param.dtype))

    def sampling_model(self) -> Any:
        return NucleusMaskedLM(unwrap(self.policy()), self.mask_model)

    def refresh(self, step: int = 0) -> None:
        # π_ψ ← π_θ before the rollout after every μ-th one is sampled: RL4LMs updates the mask model after
        # collecting rollout μ and trains on it with the masks stored while sampling, so the new π_ψ first
        # masks rollout μ + 1 — here too (the engine re-derives the masks from π_ψ, which is unchanged
        # between a rollout's sampling and its training).
        if self.refreshes > 0 and mask_policy_due(self.refreshes, self.update_every):
            self.copy_policy_into_mask()
        super().refresh(step)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["nlpo_mask"] = {k: v.detach().clone() for k, v in self._mask_params.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "nlpo_mask" in state:
            if self._mask_params:
                self._load_mask(state["nlpo_mask"])
            else:
                self._pending = state["nlpo_mask"]

    @torch.no_grad()
    def _load_mask(self, weights: dict[str, Tensor]) -> None:
        for name, value in weights.items():
            self._mask_params[name].copy_(value)
