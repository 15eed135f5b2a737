"""Reward models that read a second response in context: seq2seq RM token rewards, POLAR's reference-
conditioned reward and PIT's improvement gap.

The second response rides in ``Record.context_prefixes`` (text between the prompt and the completion that
the completion attends to but that is not scored), rendered from the templates of
``alignlab.data.reward_templates``; the objectives in ``alignlab.objectives.reward_prepared_inputs`` use the
same templates, so training and judging see one layout.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from alignlab.data.reward_templates import (
    PIT_PAPER,
    PIT_TEMPLATE,
    POLAR_PAPER,
    POLAR_TEMPLATE,
    SEQ2SEQ_PAPER,
    SEQ2SEQ_TEMPLATE,
    render_context,
)
from alignlab.data.tokenize import Truncation, encode_completion, encode_prompt
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.models.parts import unwrap
from alignlab.scoring.rows import score_rows


@torch.no_grad()
def score_with_contexts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    contexts: Sequence[str | None],
    completions: Sequence[str],
    needs: frozenset[str] = frozenset({"rewards"}),
    batch_size: int = 16,
    truncation: Truncation | None = None,
) -> Any:
    """Scores of each completion after its prompt and context prefix, flat [N] (the training layout)."""
    check_lengths(prompts, completions, contexts)
    return score_rows(
        model, tokenizer, prompts, completions, needs, batch_size, truncation, contexts=list(contexts)
    )


# ------------------------------------------------------------------------------------------ seq2seq RM
@register_judge("seq2seq_rm", paper=SEQ2SEQ_PAPER)
class Seq2SeqRewardJudge(Judge):
    """Token rewards from a seq2seq RM (a causal LM trained to rewrite y_l into y_w): +a where it keeps a token.

    The RM reads (x, y as the response to improve) and the policy response y itself. ``teacher_forcing``
    (default): token t is kept iff argmax_v P_RM(v | x, y, y_<t) = y_t. ``correction``: the RM writes its
    greedy correction c of y; tokens of y inside the longest matching blocks with c (difflib alignment) are
    kept. Kept tokens get ``keep_reward`` (+1), changed ones ``change_reward`` (−1); ``score`` sums them.
    If y equals the RM's greedy correction of itself, every token is kept (all rewards positive).
    Unverified: the exact token-reward rule of the paper (abstract only); this follows its description
    (positive for tokens the RM reproduces, negative for tokens it would change).
    """

    def __init__(
        self,
        lm: Any,
        tokenizer: Any,
        template: str = SEQ2SEQ_TEMPLATE,
        mode: str = "teacher_forcing",
        keep_reward: float = 1.0,
        change_reward: float = -1.0,
        add_eos: bool = False,
    ):
        if mode not in ("teacher_forcing", "correction"):
            raise ValueError(f"seq2seq_rm mode must be 'teacher_forcing' or 'correction', got '{mode}'")
        self.lm, self.tokenizer, self.template, self.mode = lm, tokenizer, template, mode
        self.keep_reward, self.change_reward, self.add_eos = keep_reward, change_reward, add_eos

    def context_ids(self, prompt: Prompt, response: str) -> list[int]:
        prompt_ids, _ = encode_prompt(self.tokenizer, prompt)
        return prompt_ids + encode_completion(
            self.tokenizer, self.template.format(rejected=response), add_eos=False
        )

    @torch.no_grad()
    def _logits(self, ids: list[int]) -> Tensor:
        device = next(unwrap(self.lm).parameters()).device
        return self.lm(torch.tensor([ids], device=device)).logits[0].float().cpu()

    def correction_ids(self, context_ids: list[int], max_new_tokens: int) -> list[int]:
        """The RM's greedy continuation of the context (its rewrite), stopping at EOS."""
        out: list[int] = []
        eos = self.tokenizer.eos_token_id
        for _ in range(max_new_tokens):
            nxt = int(self._logits(context_ids + out)[-1].argmax())
            if nxt == eos:
                break
            out.append(nxt)
        return out

    def kept_ids(self, context_ids: list[int], response_ids: list[int]) -> list[bool]:
        """Whether the RM keeps each response token (see the class docstring for the two modes)."""
        if not response_ids:
            return []
        if self.mode == "teacher_forcing":
            logits = self._logits(context_ids + response_ids)
            start = len(context_ids) - 1
            predicted = logits[start : start + len(response_ids)].argmax(-1).tolist()
            return [p == y for p, y in zip(predicted, response_ids)]
        correction = self.correction_ids(context_ids, len(response_ids) + 8)
        kept = [False] * len(response_ids)
        matcher = difflib.SequenceMatcher(None, response_ids, correction, autojunk=False)
        for block in matcher.get_matching_blocks():
            for i in range(block.a, block.a + block.size):
                kept[i] = True
        return kept

    def token_rewards_ids(self, context_ids: list[int], response_ids: list[int]) -> Tensor:
        kept = self.kept_ids(context_ids, response_ids)
        return torch.tensor(
            [self.keep_reward if k else self.change_reward for k in kept], dtype=torch.float32
        )

    def token_rewards(self, prompt: Prompt, response: str) -> Tensor:
        """[T] reward per response token (the tokens ``encode_completion`` gives, EOS if ``add_eos``)."""
        response_ids = encode_completion(self.tokenizer, response, add_eos=self.add_eos)
        return self.token_rewards_ids(self.context_ids(prompt, response), response_ids)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        return torch.stack([self.token_rewards(p, c).sum() for p, c in zip(prompts, completions)])


# ---------------------------------------------------------------------------- reference-conditioned RMs
ReferenceSource = Mapping[str, str] | Callable[[Prompt], str]


class _ReferenceConditionedJudge(Judge):
    template = POLAR_TEMPLATE

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        references: ReferenceSource | None = None,
        template: str | None = None,
        batch_size: int = 16,
    ):
        self.model, self.tokenizer, self.references = model, tokenizer, references
        self.template = template or type(self).template
        self.batch_size = batch_size

    def score_against(
        self, prompts: Sequence[Prompt], references: Sequence[str], completions: Sequence[str]
    ) -> Tensor:
        """r(x, y_ref, y) for each (prompt, reference, completion), [N]."""
        check_lengths(prompts, completions, references)
        contexts = [self.template.format(reference=r) for r in references]
        scores = score_with_contexts(
            self.model, self.tokenizer, prompts, contexts, completions, batch_size=self.batch_size
        )
        r = scores.rewards
        return r[:, 0] if r.dim() == 2 and r.shape[-1] == 1 else r

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        if self.references is None:
            raise ValueError(f"{self.name}: give references= (prompt → reference) or call score_against()")
        refs = []
        for p in prompts:
            ref = self.references(p) if callable(self.references) else self.references.get(render_context(p))
            if ref is None:
                raise ValueError(f"{self.name}: no reference response for prompt {render_context(p)[:60]!r}")
            refs.append(ref)
        return self.score_against(prompts, refs, completions)


@register_judge("polar", paper=POLAR_PAPER)
class PolarJudge(_ReferenceConditionedJudge):
    """POLAR reward r(x, y_ref, y): how consistent y is with a reference response (same-policy likeness).

    The reference goes in the context prefix (``POLAR_TEMPLATE``), as the ``polar`` objective trains it.
    Checked: InternLM/POLAR README.md (every input carries prompt, reference and output; fine-tuning data
    is (prompt, reference, chosen, rejected)); the exact input encoding of RewardModelClient.encode was not read.
    """

    template = POLAR_TEMPLATE


@register_judge("pit_gap_reward", paper=PIT_PAPER)
class PITGapJudge(_ReferenceConditionedJudge):
    """PIT improvement reward r_gap(x, y_ref, y): how much better y is than the reference response y_ref.

    ``antisymmetry(prompts, a, b)`` gives r_gap(x, b, a) + r_gap(x, a, b) (0 for a perfectly antisymmetric
    gap) and r_gap(x, a, a) (0 when no response improves on itself).
    Unverified: PIT's reward-model input format (abstract only).
    """

    template = PIT_TEMPLATE

    def antisymmetry(
        self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]
    ) -> tuple[Tensor, Tensor]:
        n = len(prompts)
        r = self.score_against(list(prompts) * 3, list(b) + list(a) + list(a), list(a) + list(b) + list(a))
        return r[:n] + r[n : 2 * n], r[2 * n :]
