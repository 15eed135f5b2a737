"""Deita's EVOL-COMPLEXITY and EVOL-QUALITY scorers (Liu et al. 2024, "What Makes Good Data for Alignment?
A Comprehensive Study of Automatic Data Selection in Instruction Tuning", ICLR 2024, arXiv 2312.15685).

A scorer is a causal LM fine-tuned to answer a fixed prompt with a score "1".."6"
(``hkust-nlp/deita-complexity-scorer``, ``hkust-nlp/deita-quality-scorer``, LLaMA-based). The score of a
text is the expectation of that answer under the model's next-token distribution restricted to the six
digit tokens, read at the position right after the prompt:

    s = Σ_{k=1..6} k · softmax(ℓ_{"1"}, …, ℓ_{"6"})_k,   ℓ_d = the logit of token "d" after the prompt.

Checked against the official code, github.com/hkust-nlp/deita (read 2026-12-05):
``src/deita/selection/scorer/base.py`` ``Scorer.infer_score`` (the prompt encoded with
``tokenizer.encode`` — special tokens added, so LLaMA's BOS —, the first generated step's scores at the
six digit ids, scipy ``softmax``, times [1..6], summed) and ``llama_scorer.py`` / ``mistral_scorer.py``
(the two templates below, character for character, and the digit ids 29896… / 28740…, which are the ids of
the tokens "1".."6" in those vocabularies; here they are looked up by the token strings "1".."6", so any
tokenizer works). The official code reads ``generate``'s first-step scores; under the scorers' greedy
generation config those are the raw logits, which this module uses. Its fallback of 3.0 when a digit
is missing from vLLM's top-1000 log-probs does not arise here (the full logits are read).

Multi-turn (``src/deita/pipeline/score_pipeline.py``: each human turn with the reply after it, the last
human turn with an empty reply when none follows; ``selection/filter/combined_filter.py``: the final score
is Σ_t c_t · q_t): :func:`turns` and :func:`evol_scores`.
Test: tests/scoring/test_deita_scorer.py (a tiny local model: each score equals a numpy computation from
that model's logits on the rendered prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from alignlab.data.records import Record

COMPLEXITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
    "##Query: {instruction}  \n##Complexity: "
)
QUALITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
    "Question. \n #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)
SCORES = (1, 2, 3, 4, 5, 6)


def digit_token_ids(tokenizer: Any) -> list[int]:
    """The ids of the tokens "1".."6" (LLaMA: 29896, 29906, 29941, 29946, 29945, 29953)."""
    ids = []
    unk = getattr(tokenizer, "unk_token_id", None)
    for digit in SCORES:
        token_id = tokenizer.convert_tokens_to_ids(str(digit))
        if token_id is None or (unk is not None and token_id == unk):
            raise ValueError(
                f"the scorer's tokenizer has no token '{digit}'; a Deita scorer answers with the tokens "
                "'1'..'6' (use hkust-nlp/deita-complexity-scorer / deita-quality-scorer or a model "
                "fine-tuned the same way)"
            )
        ids.append(int(token_id))
    return ids


def turns(record: Record) -> list[tuple[str, str]]:
    """(instruction, response) per user turn: each user message with the assistant message after it; the
    last user message with the record's best-ranked (else first) completion, or "" when it has none."""
    response = record.chosen if record.ranking is not None and record.k >= 2 else (
        record.completions[0] if record.completions else ""
    )  # fmt: skip
    if isinstance(record.prompt, str):
        return [(record.prompt, response)]
    messages = [m for m in record.prompt if m["role"] in ("user", "assistant")]
    out = []
    for i, message in enumerate(messages):
        if message["role"] != "user":
            continue
        follows = messages[i + 1]["content"] if i + 1 < len(messages) else response
        out.append((message["content"], follows))
    return out or [(record.prompt_text(), response)]


class DeitaScorer:
    """A Deita scorer loaded through alignlab's model loading (a hub id, a local folder, ``tiny:ARCH``)."""

    def __init__(self, path: str, device: str = "auto", batch_size: int = 8):
        from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

        settings = ModelSettings(path=path, device=device)
        self.path, self.batch_size = path, batch_size
        self.model = load_causal_lm(settings, for_training=False).eval()
        self.tokenizer = load_tokenizer(settings)
        self.ids = digit_token_ids(self.tokenizer)

    @torch.no_grad()
    def digit_logits(self, prompts: Sequence[str]) -> np.ndarray:
        """[N, 6] logits of "1".."6" at the position after each prompt (encoded with special tokens)."""
        device = next(self.model.parameters()).device
        rows = []
        for start in range(0, len(prompts), self.batch_size):
            encoded = [self.tokenizer(p)["input_ids"] for p in prompts[start : start + self.batch_size]]
            width = max(len(ids) for ids in encoded)
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            # right padding: every prompt token sits at its own position; read the last real one
            ids = torch.tensor([e + [pad] * (width - len(e)) for e in encoded], device=device)
            mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded], device=device)
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            last = torch.tensor([len(e) - 1 for e in encoded], device=device)
            rows.append(logits[torch.arange(len(encoded), device=device), last][:, self.ids].double().cpu())
        return torch.cat(rows).numpy() if rows else np.zeros((0, 6))

    def expected(self, prompts: Sequence[str]) -> np.ndarray:
        """Σ_k k · softmax(digit logits)_k per prompt."""
        logits = self.digit_logits(prompts)
        if len(logits) == 0:
            return np.zeros(0)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p @ np.asarray(SCORES, dtype=np.float64)

    def complexity(self, instructions: Sequence[str]) -> np.ndarray:
        return self.expected([COMPLEXITY_TEMPLATE.format(instruction=i) for i in instructions])

    def quality(self, instructions: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.expected(
            [QUALITY_TEMPLATE.format(instruction=i, output=o) for i, o in zip(instructions, responses)]
        )


def evol_scores(
    records: Sequence[Record],
    complexity: DeitaScorer | None = None,
    quality: DeitaScorer | None = None,
) -> list[float]:
    """Deita's final score per record, Σ_t c_t · q_t over its user turns (a missing scorer counts 1)."""
    per_record = [turns(r) for r in records]
    flat = [t for ts in per_record for t in ts]
    c = complexity.complexity([i for i, _ in flat]) if complexity else np.ones(len(flat))
    q = quality.quality([i for i, _ in flat], [o for _, o in flat]) if quality else np.ones(len(flat))
    out, at = [], 0
    for ts in per_record:
        out.append(float(np.sum(c[at : at + len(ts)] * q[at : at + len(ts)])))
        at += len(ts)
    return out
