"""Follow-up likelihood as reward: how likely a user's positive vs negative follow-up is after a response."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from alignlab.data.reward_templates import render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.scoring.rows import score_rows

POSITIVE = ("Thank you, that is exactly what I needed.", "Great answer, thanks!", "That was really helpful.")
NEGATIVE = ("That is not what I asked.", "This answer is wrong.", "You did not help me at all.")
FOLLOW_UP_TEMPLATE = "{context}\nAssistant: {response}\nUser:"


@register_judge("flr", paper="Zhang et al. 2024 'Follow-up Likelihood as Reward' (arXiv 2409.13948)")
class FollowUpLikelihoodJudge(Judge):
    """r(x, y) = mean_{f∈F⁺} log P(f | x, y) − mean_{f∈F⁻} log P(f | x, y) under a frozen causal LM.

    log P(f | x, y) is the LM's summed log-prob of the follow-up's tokens (``aggregate="sum"``) or their
    mean (``"mean"``) after the text ``template`` renders from (x, y); no end-of-turn token is added.
    Checked against the METHODS block (abstract + paper recall; aggregation is an option because the
    paper's exact choice was not verified).
    """

    def __init__(
        self,
        lm: Any,
        tokenizer: Any,
        positive: Sequence[str] = POSITIVE,
        negative: Sequence[str] = NEGATIVE,
        aggregate: str = "sum",
        template: str = FOLLOW_UP_TEMPLATE,
        batch_size: int = 16,
    ):
        if not positive or not negative:
            raise ValueError("flr needs at least one positive and one negative follow-up")
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"flr aggregate must be 'sum' or 'mean', got '{aggregate}'")
        self.lm, self.tokenizer = lm, tokenizer
        self.positive, self.negative = list(positive), list(negative)
        self.aggregate, self.template, self.batch_size = aggregate, template, batch_size

    def follow_up_logps(
        self, prompts: Sequence[Prompt], completions: Sequence[str], follow_ups: Sequence[str]
    ) -> Tensor:
        """[N, F]: log P(f | x, y) for each completion and follow-up."""
        contexts = [
            self.template.format(context=render_context(p), response=c) for p, c in zip(prompts, completions)
        ]
        flat_prompts = [c for c in contexts for _ in follow_ups]
        flat_follow = [" " + f for _ in contexts for f in follow_ups]
        scores = score_rows(
            self.lm, self.tokenizer, flat_prompts, flat_follow, batch_size=self.batch_size, add_eos=False
        )
        values = scores.logps if self.aggregate == "sum" else scores.logps / scores.lengths.clamp(min=1)
        return values.view(len(contexts), len(follow_ups))

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        both = self.follow_up_logps(prompts, completions, self.positive + self.negative)
        k = len(self.positive)
        return both[:, :k].mean(-1) - both[:, k:].mean(-1)
