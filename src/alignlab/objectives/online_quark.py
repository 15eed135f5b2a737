"""``quark`` as an online objective: Quantized Reward Konditioning (Lu et al. 2022, arXiv 2205.13636).

The loop (``train/rollout_quark.py``): the K tags are new vocabulary entries of the policy; sample (first from
the prompt alone, then with the best quantile's tag token before the prompt's ids), judge, add every sample to
the data pool, re-rank the whole pool into K reward quantiles, and serve a draw from the pool with each
sample's own quantile tag token before its prompt. This objective is the loss on what is served (math and
official defaults in ``quark.py``): the conditioned NLL, plus β × the full-vocabulary KL(π_θ ‖ π_ref) at every
completion position, minus α × the policy's entropy, one token mean over the step.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from alignlab.objectives.loss_aggregation import AGGREGATIONS
from alignlab.objectives.quark import quark_tokens
from alignlab.objectives.registry import objective
from alignlab.objectives.rollouts import RolloutPlan, rollout_plan
from alignlab.objectives.views import RolloutBatch


@objective(
    "quark",
    family="online_rl",
    feedback="rollouts",
    reduction="sum",
    needs=("token_logps", "token_entropy", "token_kl_reverse"),  # the KL statistic loads the reference
    paper="Lu et al. 2022, Quark: Controllable Text Generation with Reinforced Unlearning, arXiv 2205.13636",
)
def quark(
    batch: RolloutBatch,
    num_quantiles: int = 5,
    kl_coef: float = 0.05,
    entropy_coef: float = 0.06,
    normalisers: Any = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """L = Σ_{i,t} m_{i,t}·(−log π_θ(y_t | ⟨r_k⟩, x, y_<t) + β·KL_t − α·H_t) / Σ_{i,t} m_{i,t}, the token sum
    over the step's tokens (``normalisers``), so the loss does not depend on how the step is cut.

    KL_t = Σ_{v ∈ V_ref} π̃_θ(v | ⟨r_k⟩, x, y_<t)·log(π̃_θ(v | ⟨r_k⟩, x, y_<t) / π_ref(v | x, y_<t)): the
    reference scores the prompt WITHOUT the tag, and π̃_θ is the policy renormalised over the reference's
    vocabulary (the tag columns dropped); the engine's ``token_kl_reverse`` with the reference told to hide
    the tags (``scoring/reference_view.py``). The NLL and H_t (the policy's entropy) are over the policy's
    whole vocabulary, tags included. K = 5, β = 0.05, α = 0.06: the official defaults.
    Checked: GXimingLu/Quark main.py (ConditionTrainer.loss: ``ref_policy.forward_pass(query_input_ids[:, 1:],
    …)``, ``logits[:, :, :-len(tree_tokens)]`` before the KL's softmax, ``reduce_mean(lm_loss + kl_coef·kl −
    entropy_coef·entropy, masks)``), policy.py (forward_pass: entropy and lm_loss on the full logits),
    data_pool.py, arguments.py (see ``quark.py``).
    """
    if num_quantiles < 1:
        raise ValueError(f"quark: num_quantiles must be >= 1, got {num_quantiles}")
    items, mask = batch.items, batch.mask
    if items.token_kl_reverse is None or items.token_entropy is None:
        raise ValueError("quark needs the engine's token_kl_reverse and token_entropy")
    per_token = -items.token_logps + kl_coef * items.token_kl_reverse - entropy_coef * items.token_entropy
    count = mask.sum().clamp(min=1)
    metrics = {
        "nll": (-(items.token_logps * mask).sum() / count).detach(),
        "kl": ((items.token_kl_reverse * mask).sum() / count).detach(),
        "entropy": ((items.token_entropy * mask).sum() / count).detach(),
        "completion_length": mask.sum(-1).mean().detach(),
    }
    return AGGREGATIONS("token_mean", per_token, mask, normalisers), metrics


@rollout_plan("quark")
def _quark_plan(params: dict[str, Any]) -> RolloutPlan:
    quark_tokens(params["num_quantiles"])  # validates K
    return RolloutPlan(
        "grpo",  # not used: Quark learns from the pool's quantile tags, not from advantages
        source="quark_pool",
        source_params={"num_quantiles": params["num_quantiles"]},
    )
