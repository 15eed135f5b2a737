"""An AI labeller: a causal LM asked which of two responses is better, read from its verdict log-probs.

RLAIF (Lee et al. 2023, arXiv 2309.00267, section 2.1) and Constitutional AI (Bai et al. 2022, arXiv
2212.08073, section 4.1: "multiple choice" with the log-probs of the answer tokens): the judge reads a
preamble with the principle, the context and the two responses labelled A and B, then "Preferred
response:"; with ℓ_A, ℓ_B its log-probs of the verdicts " A" and " B",

    P(a ≻ b | a shown as A) = softmax(ℓ_A, ℓ_B)_A = σ(ℓ_A − ℓ_B).

This judge answers for ONE order, so its ``prefer_many`` carries the LM's position bias; the labeller
(``alignlab data label``, :func:`alignlab.recipes.curation.label.label_records`) asks both orders and
averages them (:mod:`alignlab.data.label.symmetric`). Checked: METHODS.md `rlaif_labeler` block; the
RLAIF paper's preamble/verdict-token scheme as recalled (no official code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.data.reward_templates import render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.scoring.rows import score_rows

PRINCIPLE = "Which response is more helpful, honest and harmless?"
TEMPLATE = (
    "{principle}\n\nContext:\n{prompt}\n\nResponse A:\n{a}\n\nResponse B:\n{b}\n\n"
    "Answer with A or B. Preferred response:"
)


@register_judge(
    "rlaif",
    paper="Lee et al. 2023 'RLAIF' (arXiv 2309.00267); Bai et al. 2022 'Constitutional AI' (arXiv 2212.08073)",
    kind="preferences",
)
class RLAIFJudge(Judge):
    """P(a ≻ b | a shown first) = σ(ℓ_A − ℓ_B) from a causal LM's verdict log-probs (one order)."""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str  # a causal LM: a folder, a hub id or tiny:ARCH
        principle: str = PRINCIPLE
        template: str = TEMPLATE
        device: str = "cpu"
        batch_size: int = Field(8, gt=0)

    def __init__(
        self,
        lm: Any,
        tokenizer: Any,
        principle: str = PRINCIPLE,
        template: str = TEMPLATE,
        batch_size: int = 8,
        model_id: str = "",
    ):
        for key in ("{principle}", "{prompt}", "{a}", "{b}"):
            if key not in template:
                raise ValueError(f"rlaif: the template must contain {key}")
        self.lm, self.tokenizer, self.principle, self.template = lm, tokenizer, principle, template
        self.batch_size, self.model_id = batch_size, model_id

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> RLAIFJudge:
        from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

        model_settings = ModelSettings(path=settings.path, device=settings.device)
        lm = load_causal_lm(model_settings, for_training=False)
        lm.eval()
        return cls(
            lm,
            load_tokenizer(model_settings),
            settings.principle,
            settings.template,
            settings.batch_size,
            settings.path,
        )

    def texts(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> list[str]:
        return [
            self.template.format(principle=self.principle, prompt=render_context(p), a=x, b=y)
            for p, x, y in zip(prompts, a, b)
        ]

    @torch.no_grad()
    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        check_lengths(prompts, a, b)
        texts = self.texts(prompts, a, b)
        unique = list(dict.fromkeys(texts))  # each distinct text scored once: equal texts, equal answers
        n = len(unique)
        logps = score_rows(
            self.lm,
            self.tokenizer,
            unique * 2,
            [" A"] * n + [" B"] * n,
            batch_size=self.batch_size,
            add_eos=False,
        ).logps
        index = torch.tensor([unique.index(t) for t in texts])
        return torch.sigmoid(logps[:n] - logps[n:])[index]
