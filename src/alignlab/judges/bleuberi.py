"""BLEUBERI's reward (Chang et al. 2025, arXiv 2505.11080): BLEU against reference answers, computed the way
its official code does (Hugging Face ``evaluate``'s ``bleu`` with ``smooth=True``), and its hard-prompt
selection.

That BLEU is not sacreBLEU's sentence BLEU (``judges/text_metrics.py``): it is the TensorFlow-NMT
``compute_bleu`` — add-one smoothing on *every* n-gram order, the *shortest* reference length in the
brevity penalty, no effective order — over the 13a tokenisation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.judges.text_metrics import References, _lookup

# sacreBLEU's 13a (mteval-v13a) rules: punctuation and symbols split off; period and comma split unless
# between digits; a dash split after a digit.
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def tokenize_13a(text: str) -> list[str]:
    """mteval-v13a tokenisation (sacreBLEU's default ``13a``; ``evaluate``'s bleu uses the same rules).
    Checked against sacrebleu 2.6 ``Tokenizer13a`` in tests/judges/test_bleuberi.py."""
    line = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return line.split()


def _ngram_counts(tokens: list[str], max_order: int) -> Counter:
    return Counter(
        tuple(tokens[i : i + n]) for n in range(1, max_order + 1) for i in range(len(tokens) - n + 1)
    )


def nmt_bleu(prediction: str, references: Sequence[str], max_order: int = 4, smooth: bool = True) -> float:
    """BLEU in [0, 1] as ``evaluate.load("bleu").compute(predictions=[y], references=[refs], smooth=...)``.

    Clipped matches m_n = Σ_g min(c_y(g), max_ref c_ref(g)), possible t_n = max(|y| − n + 1, 0);
    p_n = (m_n + 1)/(t_n + 1) with ``smooth`` (every order, unigrams included), else m_n/t_n (0 if t_n = 0);
    geometric mean exp((1/N) Σ_n log p_n), 0 if any p_n = 0; BP = 1 if |y|/r > 1 else exp(1 − r/|y|) with
    r the *shortest* reference length. An empty prediction scores 0 (BLEUBERI's ``bleu_reward`` guard).
    Checked: lilakk/BLEUBERI training/utils.py (``bleu_reward``: evaluate "bleu", smooth=True, 0 for an
    empty prediction); the algorithm is tensorflow/nmt ``compute_bleu`` as vendored by evaluate.
    """
    if not references:
        raise ValueError("BLEU needs at least one reference")
    hyp = tokenize_13a(prediction)
    if not hyp:
        return 0.0
    refs = [tokenize_13a(r) for r in references]
    merged: Counter = Counter()
    for ref in refs:
        merged |= _ngram_counts(ref, max_order)
    overlap = _ngram_counts(hyp, max_order) & merged
    matches = [0] * max_order
    for gram, count in overlap.items():
        matches[len(gram) - 1] += count
    logs = []
    for n in range(1, max_order + 1):
        possible = max(len(hyp) - n + 1, 0)
        if smooth:
            p = (matches[n - 1] + 1.0) / (possible + 1.0)
        else:
            p = matches[n - 1] / possible if possible > 0 else 0.0
        if p <= 0:
            return 0.0
        logs.append(math.log(p))
    ratio = len(hyp) / min(len(r) for r in refs)
    bp = 1.0 if ratio > 1.0 else math.exp(1 - 1.0 / ratio)
    return bp * math.exp(sum(logs) / max_order)


@register_judge(
    "bleuberi",
    paper="Chang et al. 2025 BLEUBERI 'BLEU is a surprisingly effective reward for instruction following' "
    "(arXiv 2505.11080)",
)
class BleuberiJudge(Judge):
    """r(x, y) = BLEU(y, references(x)) as BLEUBERI trains with it (smoothed NMT BLEU over 13a tokens).

    ``references``: a dict prompt text → reference answers (BLEUBERI uses up to 5, from several strong
    models) or a function of the prompt; or None, and each prompt record's field ``column`` (a string or a
    list of strings) holds them — the config form, ``{name: bleuberi, column: references}`` with prompt
    rows like ``{"prompt": …, "references": ["…", "…"]}``. A completion equal to a reference scores 1.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        column: str = "references"  # the prompt records' field with the reference answer(s)
        max_order: int = Field(4, ge=1)
        smooth: bool = True

    def __init__(
        self,
        references: References | None = None,
        max_order: int = 4,
        smooth: bool = True,
        column: str = "references",
    ):
        if max_order < 1:
            raise ValueError(f"BLEU max_order must be >= 1, got {max_order}")
        self.references, self.max_order, self.smooth, self.column = references, max_order, smooth, column

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> BleuberiJudge:
        return cls(None, settings.max_order, settings.smooth, settings.column)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        if self.references is None:
            raise ValueError(
                "bleuberi: no references; give a dict or a function, or train on prompt records with a "
                f"'{self.column}' field"
            )
        return self._bleu([_lookup(self.references, p) for p in prompts], completions)

    def score_batch(self, batch: Any) -> Tensor:
        """Reads the references from the prompt records' ``column`` when no dict/function was given."""
        if self.references is not None:
            return self.score(batch.prompts, batch.completions)
        if self.column not in batch.columns:
            raise ValueError(
                f"bleuberi: the prompt records have no '{self.column}' field (they have "
                f"{sorted(batch.columns) or 'only a prompt'}); add the reference answers there or set the "
                "judge's column"
            )
        refs = []
        for i, value in enumerate(batch.columns[self.column]):
            value = [value] if isinstance(value, str) else list(value or [])
            if not value or not all(isinstance(v, str) for v in value):
                raise ValueError(
                    f"bleuberi: completion {i}: '{self.column}' must be a string or a non-empty list of "
                    f"strings, got {value!r}"
                )
            refs.append(value)
        return self._bleu(refs, batch.completions)

    def _bleu(self, refs: Sequence[Sequence[str]], completions: Sequence[str]) -> Tensor:
        values = [nmt_bleu(c, r, self.max_order, self.smooth) for c, r in zip(completions, refs)]
        return torch.tensor(values, dtype=torch.float32)


def select_hard_prompts(
    prompts: Sequence[Prompt], base_scores: Sequence[float], num_examples: int
) -> list[int]:
    """Indices of the ``num_examples`` prompts whose base-model output scored lowest (BLEUBERI's
    ``selection_mode="hard"``: the instructions the model does worst on by BLEU), lowest first; ties keep
    the data order. Checked: lilakk/BLEUBERI training/create_training_data.py (``selection_mode == "hard"``:
    sort the base model's outputs — sampled at temperature 0.7, top-p 0.9 — by the metric ascending and
    keep the first num_examples)."""
    if len(prompts) != len(base_scores):
        raise ValueError(f"{len(prompts)} prompts but {len(base_scores)} scores")
    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    order = sorted(range(len(prompts)), key=lambda i: float(base_scores[i]))
    return order[:num_examples]
