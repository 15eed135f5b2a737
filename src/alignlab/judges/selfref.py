"""Self-reference AI feedback: an LM judge answers the question itself, compares two responses against its
own answer under one general principle, in both orders, and returns a swap-consistent label and strength."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from alignlab.data.reward_templates import render_context
from alignlab.data.tokenize import encode_prompt
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.models.parts import unwrap
from alignlab.scoring.rows import score_rows

PAPER = "Bao et al. 2024 'Aligning LLMs from Self-Reference AI Feedback with one General Principle' (arXiv 2406.11190)"
PRINCIPLE = "Choose the response that is best for humanity."
SELFREF_TEMPLATE = (
    "[QUESTION] {prompt}\n[YOUR OWN ANSWER] {own}\n[RESPONSE A] {a}\n[RESPONSE B] {b}\n"
    "Using your own answer as a reference, criticise both responses. {principle} Answer A or B:"
)


@dataclass
class SelfRefVerdict:
    label: Tensor  # [N] +1: a preferred, −1: b preferred, 0: the two orders disagree (position bias)
    strength: Tensor  # [N] |s| when the orders agree, else 0
    margin: Tensor  # [N] s = ½[(ℓ_A − ℓ_B | a, b) + (ℓ_B − ℓ_A | b, a)], signed towards a
    p_first: Tensor  # [N, 2] P(label A) with a first, P(label A) with b first


@register_judge("selfref_feedback_strength", paper=PAPER, kind="preferences")
class SelfReferenceJudge(Judge):
    """Swap-consistent verdict of a causal-LM judge with a preference strength.

    For each order the judge reads ``SELFREF_TEMPLATE`` (question, its own answer, A, B, the principle) and
    ℓ_A, ℓ_B are its log-probs of the verdicts "A" and "B". Votes: a wins in order (a, b) iff ℓ_A > ℓ_B, and
    in order (b, a) iff ℓ_B > ℓ_A; label = +1/−1 when both orders agree, 0 (a tie) otherwise. Margin
    s = mean over the orders of the verdict log-odds for a; strength = |s| for consistent labels, else 0;
    ``prefer`` gives σ(s). Swapping a and b negates label and margin exactly and keeps the strength.
    ``own_answer``: None (no self-reference), a dict/function prompt → answer, or ``"generate"`` (the
    judge LM's greedy answer, ``max_new_tokens``).
    Unverified: the paper's "semantic perplexity" strength (abstract only); the verdict log-odds averaged
    over both orders stands in for it, so use it as a margin/weight only after checking its scale.
    """

    def __init__(
        self,
        lm: Any,
        tokenizer: Any,
        principle: str = PRINCIPLE,
        template: str = SELFREF_TEMPLATE,
        own_answer: None | str | Mapping[str, str] | Callable[[Prompt], str] = None,
        max_new_tokens: int = 32,
        batch_size: int = 16,
    ):
        if isinstance(own_answer, str) and own_answer != "generate":
            raise ValueError("own_answer must be None, 'generate', a dict prompt → answer, or a function")
        self.lm, self.tokenizer, self.principle, self.template = lm, tokenizer, principle, template
        self.own_answer, self.max_new_tokens, self.batch_size = own_answer, max_new_tokens, batch_size

    @torch.no_grad()
    def generate_answer(self, prompt: Prompt) -> str:
        ids, _ = encode_prompt(self.tokenizer, prompt)
        device = next(unwrap(self.lm).parameters()).device
        out: list[int] = []
        for _ in range(self.max_new_tokens):
            logits = self.lm(torch.tensor([ids + out], device=device)).logits[0, -1]
            nxt = int(logits.argmax())
            if nxt == self.tokenizer.eos_token_id:
                break
            out.append(nxt)
        return self.tokenizer.decode(out, skip_special_tokens=True).strip()

    def answer_for(self, prompt: Prompt) -> str:
        if self.own_answer is None:
            return "(none)"
        if self.own_answer == "generate":
            return self.generate_answer(prompt)
        if callable(self.own_answer):
            return self.own_answer(prompt)
        key = render_context(prompt)
        if key not in self.own_answer:
            raise ValueError(f"selfref: no own answer for prompt {key[:60]!r}")
        return self.own_answer[key]

    def _label_logps(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """(log P("A" | text), log P("B" | text)) per text; each distinct text is scored once, so equal
        texts (a response judged against itself) get bit-identical values."""
        unique = list(dict.fromkeys(texts))
        n = len(unique)
        logps = score_rows(
            self.lm, self.tokenizer, unique * 2, ["A"] * n + ["B"] * n, batch_size=self.batch_size
        ).logps
        index = torch.tensor([unique.index(t) for t in texts])
        return logps[:n][index], logps[n:][index]

    def judge(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> SelfRefVerdict:
        check_lengths(prompts, a, b)
        n = len(prompts)
        owns = [self.answer_for(p) for p in prompts]
        # Canonical order (x ≤ y as strings): judge(a, b) and judge(b, a) then run the very same forward
        # passes, so swapping the inputs changes signs only, exactly.
        swapped = torch.tensor([x > y for x, y in zip(a, b)])
        lo = [min(x, y) for x, y in zip(a, b)]
        hi = [max(x, y) for x, y in zip(a, b)]
        texts = []
        for first, second in ((lo, hi), (hi, lo)):
            texts += [
                self.template.format(prompt=render_context(p), own=o, a=x, b=y, principle=self.principle)
                for p, o, x, y in zip(prompts, owns, first, second)
            ]
        la, lb = self._label_logps(texts)
        lo_first, hi_first = la[:n] - lb[:n], la[n:] - lb[n:]  # log-odds of verdict "A" in each order
        forward = torch.where(swapped, hi_first, lo_first)  # log-odds of "A" (= a) with a first
        backward = torch.where(swapped, lo_first, hi_first)  # log-odds of "A" (= b) with b first
        votes = torch.sign(forward) - torch.sign(backward)  # +2: both orders pick a, −2: both pick b
        label = torch.where(votes.abs() == 2, torch.sign(votes), torch.zeros_like(votes))
        margin = 0.5 * (forward - backward)
        strength = torch.where(label != 0, margin.abs(), torch.zeros_like(margin))
        p_first = torch.stack([torch.sigmoid(forward), torch.sigmoid(backward)], -1)
        return SelfRefVerdict(label, strength, margin, p_first)

    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        return torch.sigmoid(self.judge(prompts, a, b).margin)
