"""Reference-free and reference-based text metrics as judges: sentence BLEU (BLEUBERI) and R³'s regularised
relevance reward. Pure Python/numpy, deterministic, offline."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from alignlab.data.reward_templates import render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge

SMOOTHING = ("exp", "add1", "none")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize_words(text: str, mode: str = "whitespace") -> list[str]:
    """``whitespace``: str.split(); ``punct``: words and single punctuation marks (a light 13a-like split)."""
    if mode == "whitespace":
        return text.split()
    if mode == "punct":
        return _WORD.findall(text)
    raise ValueError(f"BLEU tokenize must be 'whitespace' or 'punct', got '{mode}'")


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    max_order: int = 4,
    smooth: str = "exp",
    tokenize: str = "whitespace",
) -> float:
    """Sentence BLEU in [0, 1]: BP · exp((1/N') Σ_{n≤N'} log p_n).

    p_n = Σ_g min(c_hyp(g), max_ref c_ref(g)) / Σ_g c_hyp(g) over the hypothesis's n-grams (clipped by the
    largest count in any one reference). BP = 1 if c ≥ r else exp(1 − r/c), c the hypothesis length, r the
    reference length closest to c (the shorter on a tie). N' (effective order) = the largest n ≤ N for
    which the hypothesis has n-grams. No match at all gives 0. Smoothing of zero-match orders:
    ``exp`` (sacreBLEU's sentence default, NIST mteval): the k-th zero precision becomes 1/(2^k · total_n);
    ``add1`` (Lin & Och 2004): p_n = (m_n + 1)/(t_n + 1) for n ≥ 2; ``none``: a zero precision gives 0.
    Checked: mjpost/sacrebleu sacrebleu/metrics/bleu.py (BLEU.compute_bleu: early 0 with no match,
    'exp' smoothing, effective order, closest reference length). Tokenisation here is whitespace (or a
    light punctuation split), not sacreBLEU's 13a, and scores are in [0, 1], not [0, 100].
    """
    if smooth not in SMOOTHING:
        raise ValueError(f"BLEU smooth must be one of {SMOOTHING}, got '{smooth}'")
    if not references:
        raise ValueError("BLEU needs at least one reference")
    hyp = tokenize_words(hypothesis, tokenize)
    refs = [tokenize_words(r, tokenize) for r in references]
    if not hyp:
        return 0.0
    correct, total = [], []
    for n in range(1, max_order + 1):
        hyp_counts = _ngrams(hyp, n)
        ref_max: Counter = Counter()
        for ref in refs:
            for gram, count in _ngrams(ref, n).items():
                ref_max[gram] = max(ref_max[gram], count)
        correct.append(sum(min(c, ref_max[g]) for g, c in hyp_counts.items()))
        total.append(sum(hyp_counts.values()))
    if not any(correct):
        return 0.0
    c = len(hyp)
    r = min((abs(len(ref) - c), len(ref)) for ref in refs)[1]
    bp = 1.0 if c >= r else math.exp(1.0 - r / c)
    logs, doubling = [], 1.0
    for n in range(max_order):
        if total[n] == 0:
            break  # effective order: the hypothesis is shorter than n + 1 words
        m, t = correct[n], total[n]
        if smooth == "add1" and n >= 1:
            m, t = m + 1, t + 1
        if m == 0:
            if smooth == "none":
                return 0.0
            doubling *= 2.0
            logs.append(math.log(1.0 / (doubling * t)))
        else:
            logs.append(math.log(m / t))
    return bp * math.exp(sum(logs) / len(logs))


References = Mapping[str, Sequence[str]] | Callable[[Prompt], Sequence[str]]


def _lookup(references: References, prompt: Prompt) -> list[str]:
    key = render_context(prompt)
    refs = references(prompt) if callable(references) else references.get(key)
    if not refs:
        raise ValueError(f"no reference outputs for prompt {key[:60]!r}; give references for every prompt")
    return [refs] if isinstance(refs, str) else list(refs)


@register_judge(
    "bleu_reward",
    paper="Chang et al. 2025 BLEUBERI 'BLEU is a surprisingly effective reward' (arXiv 2505.11080)",
)
class BleuJudge(Judge):
    """r(x, y) = sentence BLEU(y, references(x)) ∈ [0, 1] (order 4, exp smoothing, effective order).

    ``references``: a dict prompt text → reference outputs, or a function of the prompt. r(x, ref) = 1.
    Unverified for BLEUBERI's exact settings (abstract only; the paper's tokeniser/smoothing were not read):
    the defaults follow sacreBLEU's sentence-BLEU (checked, see :func:`sentence_bleu`).
    """

    def __init__(
        self, references: References, max_order: int = 4, smooth: str = "exp", tokenize: str = "whitespace"
    ):
        if smooth not in SMOOTHING:
            raise ValueError(f"BLEU smooth must be one of {SMOOTHING}, got '{smooth}'")
        if max_order < 1:
            raise ValueError(f"BLEU max_order must be >= 1, got {max_order}")
        self.references, self.max_order, self.smooth, self.tokenize = references, max_order, smooth, tokenize

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        values = [
            sentence_bleu(c, _lookup(self.references, p), self.max_order, self.smooth, self.tokenize)
            for p, c in zip(prompts, completions)
        ]
        return torch.tensor(values, dtype=torch.float32)


# ----------------------------------------------------------------------------------------------- R³
class BagOfWordsEncoder:
    """A deterministic text encoder: lower-cased word counts with sublinear tf (1 + log tf), optional IDF
    from a fixed corpus, L2-normalised. Vectors of different calls share one vocabulary (words are keys),
    so the embedding of a text never depends on the other texts in a batch."""

    def __init__(self, idf_corpus: Sequence[str] | None = None):
        self.idf: dict[str, float] | None = None
        if idf_corpus:
            docs = [set(self.words(t)) for t in idf_corpus]
            df = Counter(w for d in docs for w in d)
            n = len(docs)
            # Smoothed IDF (as scikit-learn's default): log((1 + n)/(1 + df)) + 1; unseen words get df = 0.
            self.idf = {w: math.log((1 + n) / (1 + d)) + 1.0 for w, d in df.items()}
            self._unseen = math.log(1 + n) + 1.0

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    def vector(self, text: str) -> dict[str, float]:
        counts = Counter(self.words(text))
        vec = {w: 1.0 + math.log(c) for w, c in counts.items()}
        if self.idf is not None:
            vec = {w: v * self.idf.get(w, self._unseen) for w, v in vec.items()}
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {w: v / norm for w, v in vec.items()} if norm > 0 else {}

    def cosine(self, a: str, b: str) -> float:
        va, vb = self.vector(a), self.vector(b)
        return float(sum(v * vb.get(w, 0.0) for w, v in va.items()))


def _bigrams(words: list[str]) -> list[tuple[str, str]]:
    return list(zip(words, words[1:]))


def copy_ratio(query: str, response: str) -> float:
    """Share of the response's word bigrams that also occur in the query (1 = the response copies it)."""
    q, r = _bigrams(BagOfWordsEncoder.words(query)), _bigrams(BagOfWordsEncoder.words(response))
    if not r:
        words_r = BagOfWordsEncoder.words(response)
        return float(bool(words_r) and all(w in set(BagOfWordsEncoder.words(query)) for w in words_r))
    qs = set(q)
    return sum(g in qs for g in r) / len(r)


def repetition_ratio(response: str) -> float:
    """1 − distinct bigrams / bigrams of the response (0 = no repeated bigram)."""
    r = _bigrams(BagOfWordsEncoder.words(response))
    return 1.0 - len(set(r)) / len(r) if r else 0.0


@register_judge(
    "r3_relevance_reward",
    paper="Jang et al. 2024 R³ 'Preference-free Alignment Learning with Regularized Relevance Reward' (arXiv 2402.14503)",
)
class RegularizedRelevanceJudge(Judge):
    """r(x, y) = w_rel·cos(e(x), e(y)) − w_copy·copy(x, y) − w_rep·rep(y) + w_len·min(|y|/L, 1).

    cos: cosine similarity of text embeddings (``embed(texts) -> [N, d]``, e.g. a MiniLM sentence encoder;
    default :class:`BagOfWordsEncoder`, offline and deterministic). copy: share of y's word bigrams found
    in x (copying the query earns relevance but is penalised). rep: 1 − distinct/total bigrams of y.
    The length term rewards answers up to L words (a length incentive against terse answers).
    Unverified: the paper (abstract only here) describes a retriever relevance score plus regularising
    reward functions; these three regularisers and the default weights are this library's choice.
    """

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray | Tensor] | None = None,
        relevance_weight: float = 1.0,
        copy_weight: float = 1.0,
        repetition_weight: float = 0.5,
        length_weight: float = 0.1,
        target_length: int = 50,
    ):
        if target_length < 1:
            raise ValueError(f"r3 target_length must be >= 1 word, got {target_length}")
        self.embed, self.encoder = embed, BagOfWordsEncoder()
        self.w_rel, self.w_copy, self.w_rep, self.w_len = (
            relevance_weight,
            copy_weight,
            repetition_weight,
            length_weight,
        )
        self.target_length = target_length

    def relevance(self, queries: list[str], responses: list[str]) -> np.ndarray:
        if self.embed is None:
            return np.array([self.encoder.cosine(q, r) for q, r in zip(queries, responses)])
        e = self.embed(queries + responses)
        e = e.detach().cpu().numpy() if isinstance(e, Tensor) else np.asarray(e)
        e = e.astype(np.float64)
        n = len(queries)
        if e.shape[0] != 2 * n:
            raise ValueError(f"embed returned {e.shape[0]} vectors for {2 * n} texts")
        norms = np.linalg.norm(e, axis=1).clip(min=1e-12)
        e = e / norms[:, None]
        return (e[:n] * e[n:]).sum(1)

    def components(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> dict[str, np.ndarray]:
        """Each term of the reward per completion (before weighting)."""
        check_lengths(prompts, completions)
        queries, responses = [render_context(p) for p in prompts], list(completions)
        words = [len(BagOfWordsEncoder.words(r)) for r in responses]
        return {
            "relevance": self.relevance(queries, responses),
            "copy": np.array([copy_ratio(q, r) for q, r in zip(queries, responses)]),
            "repetition": np.array([repetition_ratio(r) for r in responses]),
            "length": np.minimum(np.array(words, dtype=float) / self.target_length, 1.0),
        }

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        c = self.components(prompts, completions)
        r = (
            self.w_rel * c["relevance"]
            - self.w_copy * c["copy"]
            - self.w_rep * c["repetition"]
            + self.w_len * c["length"]
        )
        return torch.tensor(r, dtype=torch.float32)
