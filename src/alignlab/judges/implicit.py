"""Implicit rewards read from policies: DPO's β·(log π − log π_ref) and RewardBench's reference-free forms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.scoring.rows import score_rows

VARIANTS = ("ref", "sum", "avg", "norm")


@register_judge(
    "implicit_reward",
    paper="Rafailov et al. 2023 DPO (arXiv 2305.18290); Lambert et al. 2024 RewardBench (arXiv 2403.13787)",
)
class ImplicitRewardJudge(Judge):
    """A DPO-trained policy as a reward model: r = β·(log π(y|x) − log π_ref(y|x)), or reference-free.

    ``variant``: ``ref`` (needs ``reference``), ``sum`` = log π(y|x), ``avg`` = log π(y|x)/|y|,
    ``norm`` = −‖(log π(y_t|·))_t‖₂ (the L2 norm of the per-token log-probs, negated).
    Checked: allenai/reward-bench rewardbench/dpo.py (DPOInference.inference_step: chosen_logratios =
    policy − ref logps; get_batch_logps with average_log_prob / norm_log_prob = −torch.norm(p=2)).
    """

    def __init__(
        self,
        policy: Any,
        tokenizer: Any,
        reference: Any = None,
        beta: float = 1.0,
        variant: str | None = None,
        batch_size: int = 16,
    ):
        variant = variant or ("ref" if reference is not None else "avg")
        if variant not in VARIANTS:
            raise ValueError(f"implicit reward variant must be one of {VARIANTS}, got '{variant}'")
        if variant == "ref" and reference is None:
            raise ValueError("variant 'ref' needs a reference model; pass reference= or use sum/avg/norm")
        self.policy, self.reference, self.tokenizer = policy, reference, tokenizer
        self.beta, self.variant, self.batch_size = beta, variant, batch_size

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        needs = frozenset({"token_logps"}) if self.variant == "norm" else frozenset()
        run = lambda model: score_rows(model, self.tokenizer, prompts, completions, needs, self.batch_size)  # noqa: E731
        policy = run(self.policy)
        if self.variant == "ref":
            return self.beta * (policy.logps - run(self.reference).logps)
        if self.variant == "sum":
            return policy.logps
        if self.variant == "avg":
            return policy.logps / policy.lengths.clamp(min=1)
        return -(policy.token_logps * policy.token_mask).norm(p=2, dim=-1)
