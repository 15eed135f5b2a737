"""Tokenise records into groups: one prompt shared by K completions.

The prompt and each completion are tokenised separately and concatenated, so the prompt's ids are
exactly a prefix of prompt + completion (no drift at the boundary), and a BOS token, if the tokenizer
adds one, appears once. Chat prompts go through ``tokenizer.apply_chat_template`` with the generation
prompt; each completion ends with the tokenizer's EOS (for chat models, the end-of-turn token).

Truncation keeps the end of a long prompt (the last turns matter most) and cuts the end of a long
completion; with ``completion="drop"`` such records are dropped instead. Every truncation and drop is
counted in the :class:`TokenizeReport`, never silent.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from alignlab.data.records import Record


@dataclass(frozen=True)
class Truncation:
    max_length: int = 1024  # prompt + context + completion, per completion
    max_prompt_length: int = 512
    prompt: Literal["keep_end", "keep_start"] = "keep_end"
    completion: Literal["keep_start", "drop"] = "keep_start"


@dataclass
class TokenizedGroup:
    prompt_ids: list[int]
    completion_ids: list[list[int]]  # scored tokens of each completion (EOS included)
    context_ids: list[list[int]]  # unscored tokens between the prompt and each completion
    roles: list[str]
    record_index: int
    token_weights: list[list[float]] | None = None  # per completion token, from the record's spans
    # Online training: per-completion tensors of a rollout (old/reference log-probs, advantages, ...),
    # each [K] or [K, T] (T >= the longest completion, zero-padded); batched into Feedback.rollout.
    rollout: dict[str, Any] | None = None

    @property
    def num_tokens(self) -> int:
        """Tokens in the packed layout: the prompt once, then every context and completion."""
        return len(self.prompt_ids) + sum(
            len(c) + len(x) for c, x in zip(self.completion_ids, self.context_ids)
        )

    @property
    def num_tokens_unshared(self) -> int:
        """Tokens when every completion repeats the prompt (the layout peers use)."""
        return sum(
            len(self.prompt_ids) + len(c) + len(x) for c, x in zip(self.completion_ids, self.context_ids)
        )


@dataclass
class TokenizeReport:
    records: int = 0
    kept: int = 0
    truncated_prompts: int = 0
    truncated_completions: int = 0
    completions: int = 0  # completions looked at (the total that truncated_completions is out of)
    prompt_truncation: str = "keep_end"  # which part of a long prompt was kept
    dropped: Counter = field(default_factory=Counter)
    dropped_examples: dict[str, list[int]] = field(default_factory=dict)
    fallback_chat_rendering: int = 0

    def drop(self, reason: str, index: int) -> None:
        self.dropped[reason] += 1
        self.dropped_examples.setdefault(reason, [])
        if len(self.dropped_examples[reason]) < 5:
            self.dropped_examples[reason].append(index)

    def lines(self) -> list[str]:
        out = [f"{self.kept} of {self.records} records tokenised"]
        if self.truncated_prompts:
            out.append(
                f"{self.truncated_prompts} of {self.records} prompts truncated (kept their "
                f"{'end' if self.prompt_truncation == 'keep_end' else 'start'}; max_prompt_length)"
            )
        if self.truncated_completions:
            out.append(f"{self.truncated_completions} of {self.completions} completions cut at max_length")
        for reason, count in self.dropped.items():
            out.append(f"{count} records dropped: {reason} (e.g. records {self.dropped_examples[reason]})")
        if self.fallback_chat_rendering:
            out.append(
                f"{self.fallback_chat_rendering} chat prompts rendered as 'role: content' lines because the "
                "tokenizer has no chat template (set model.chat_template to choose one)"
            )
        return out


def render_prompt(tokenizer: Any, prompt: str | list[dict[str, str]]) -> tuple[str, bool]:
    """The prompt as the text the model sees, and whether a fallback rendering was used."""
    if isinstance(prompt, str):
        return prompt, False
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        return text, False
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in prompt]
    return "\n".join(lines) + "\nAssistant:", True


def encode_prompt(tokenizer: Any, prompt: str | list[dict[str, str]]) -> tuple[list[int], bool]:
    ((ids, fallback),) = encode_prompts(tokenizer, [prompt])
    return ids, fallback


def render_prompts(tokenizer: Any, prompts: list[str | list[dict[str, str]]]) -> list[tuple[str, bool]]:
    """``render_prompt`` for many prompts: the chat prompts go through one ``apply_chat_template`` call per
    ``size`` conversations (the per-call set-up of a template render costs about as much as the render)."""
    rendered: list[tuple[str, bool] | None] = [None] * len(prompts)
    chats = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str) or not getattr(tokenizer, "chat_template", None):
            rendered[i] = render_prompt(tokenizer, prompt)
        else:
            chats.append(i)
    for start in range(0, len(chats), _BATCH):
        which = chats[start : start + _BATCH]
        texts = tokenizer.apply_chat_template(
            [prompts[i] for i in which], add_generation_prompt=True, tokenize=False
        )
        for i, text in zip(which, texts):
            rendered[i] = (text, False)
    return rendered  # type: ignore[return-value]


def encode_prompts(
    tokenizer: Any, prompts: list[str | list[dict[str, str]]], adds_bos: bool | None = None
) -> list[tuple[list[int], bool]]:
    """``encode_prompt`` for many prompts, rendered and tokenised in batches."""
    rendered = render_prompts(tokenizer, prompts)
    # A chat template writes its own special tokens (BOS included); plain text gets the tokenizer's.
    add_special = [isinstance(p, str) or fallback for p, (_, fallback) in zip(prompts, rendered)]
    ids: list[list[int]] = [[] for _ in prompts]
    for flag in (True, False):
        which = [i for i, a in enumerate(add_special) if a is flag]
        for i, encoded in zip(which, _batch_encode(tokenizer, [rendered[i][0] for i in which], flag)):
            ids[i] = encoded
    bos, eos = getattr(tokenizer, "bos_token_id", None), tokenizer.eos_token_id
    eos_text = tokenizer.eos_token
    out = []
    for (text, fallback), add, piece in zip(rendered, add_special, ids):
        if not add and bos is not None and (not piece or piece[0] != bos):
            if adds_bos is None:
                adds_bos = _adds_bos(tokenizer)
            if adds_bos:
                piece = [bos, *piece]  # a template without BOS for a model that always saw one
        if add and piece and eos is not None and piece[-1] == eos and not text.endswith(eos_text):
            piece = piece[:-1]  # tokenizers that append EOS to every input would end the prompt early
        out.append((piece, fallback))
    return out


_BATCH = 1024


def _batch_encode(
    tokenizer: Any, texts: list[str], add_special_tokens: bool, size: int = _BATCH
) -> list[list[int]]:
    """The ``input_ids`` of ``tokenizer(texts, add_special_tokens=...)``, in batches of ``size``.

    A fast tokenizer whose Rust backend is already in the state that call would put it in (no truncation,
    no padding, special tokens in the text not split) is called directly with ``encode_batch_fast``: the
    same ids, without the offsets, attention masks and per-text dicts ``transformers`` builds around them
    (a third of the time on short texts). Any other tokenizer goes through ``tokenizer(...)``.
    """
    out: list[list[int]] = []
    fast = _direct_encoder(tokenizer)
    for start in range(0, len(texts), size):
        batch = texts[start : start + size]
        if fast is not None:
            out += [e.ids for e in fast(batch, add_special_tokens=add_special_tokens)]
        else:
            out += [list(x) for x in tokenizer(batch, add_special_tokens=add_special_tokens)["input_ids"]]
    return out


def _direct_encoder(tokenizer: Any) -> Any:
    """The backend's ``encode_batch_fast`` when calling it gives what ``tokenizer(texts)`` gives, else None."""
    backend = getattr(tokenizer, "_tokenizer", None)
    fast = getattr(backend, "encode_batch_fast", None)
    if fast is None or not getattr(tokenizer, "is_fast", False):
        return None
    try:
        same_state = (
            backend.truncation is None
            and backend.padding is None
            and backend.encode_special_tokens == bool(getattr(tokenizer, "split_special_tokens", False))
        )
    except AttributeError:  # a backend of another shape
        return None
    return fast if same_state else None


def _adds_bos(tokenizer: Any) -> bool:
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id


def encode_completion(tokenizer: Any, text: str, add_eos: bool = True) -> list[int]:
    return encode_completions(tokenizer, [text], add_eos)[0]


def encode_completions(tokenizer: Any, texts: list[str], add_eos: bool = True) -> list[list[int]]:
    """``encode_completion`` for many texts, tokenised in batches."""
    out = _batch_encode(tokenizer, texts, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    return [_with_eos(eos, ids) for ids in out] if add_eos else out


def _with_eos(eos: int | None, ids: list[int]) -> list[int]:
    return ids if eos is None or (ids and ids[-1] == eos) else [*ids, eos]


def span_token_weights(tokenizer: Any, text: str, spans: list[Any], num_tokens: int) -> list[float]:
    """Weight of each completion token: the weight of the strongest span (largest |weight|) overlapping it."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    weights = [0.0] * num_tokens
    for t, (start, end) in enumerate(offsets[:num_tokens]):
        for span in spans:
            if start < span.end and span.start < end and abs(span.weight) > abs(weights[t]):
                weights[t] = float(span.weight)
    return weights


def tokenize_records(
    records: list[Record],
    tokenizer: Any,
    truncation: Truncation | None = None,
    add_eos: bool = True,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 2048,
) -> tuple[list[TokenizedGroup], TokenizeReport]:
    """Each record's prompt and completions as a :class:`TokenizedGroup` (records dropped by truncation
    are counted in the report, not returned). Records are tokenised ``chunk_size`` at a time, the same
    ids as all at once; ``progress(n)`` is called after each chunk with its number of records."""
    truncation = truncation or Truncation()
    report = TokenizeReport(records=len(records), prompt_truncation=truncation.prompt)
    groups: list[TokenizedGroup] = []
    adds_bos = _adds_bos(tokenizer)
    for start in range(0, len(records), chunk_size):
        chunk = records[start : start + chunk_size]
        groups += _tokenize_chunk(chunk, start, tokenizer, truncation, add_eos, adds_bos, report)
        if progress is not None:
            progress(len(chunk))
    report.kept = len(groups)
    return groups, report


def _tokenize_chunk(
    records: list[Record],
    first_index: int,
    tokenizer: Any,
    truncation: Truncation,
    add_eos: bool,
    adds_bos: bool,
    report: TokenizeReport,
) -> list[TokenizedGroup]:
    """The groups of ``records`` (the records from index ``first_index`` on), counting into ``report``."""
    groups: list[TokenizedGroup] = []
    bos, eos = getattr(tokenizer, "bos_token_id", None), tokenizer.eos_token_id
    encoded_prompts = encode_prompts(tokenizer, [r.prompt for r in records], adds_bos)
    texts, text_index = _completion_texts(records)
    encoded_texts = encode_completions(tokenizer, texts, add_eos=False)  # contexts take no EOS
    for offset, record in enumerate(records):
        index = first_index + offset
        prompt_ids, fallback = encoded_prompts[offset]
        report.fallback_chat_rendering += int(fallback)
        if len(prompt_ids) > truncation.max_prompt_length:
            report.truncated_prompts += 1
            keep = truncation.max_prompt_length
            if truncation.prompt == "keep_end":
                head = [bos] if bos is not None and prompt_ids[0] == bos else []
                prompt_ids = head + prompt_ids[len(prompt_ids) - (keep - len(head)) :]
            else:
                prompt_ids = prompt_ids[:keep]
        prefixes, roles = record.completion_contexts, record.completion_roles
        contexts = [list(encoded_texts[text_index[p]]) if p else [] for p in prefixes]
        completions, dropped = [], None
        for text, context in zip(record.completions, contexts):
            ids = encoded_texts[text_index[text]]
            ids = _with_eos(eos, ids) if add_eos else list(ids)
            report.completions += 1
            budget = truncation.max_length - len(prompt_ids) - len(context)
            if budget <= 0:
                dropped = "prompt (and context) leave no room for the completion within max_length"
                break
            if len(ids) > budget:
                if truncation.completion == "drop":
                    dropped = "completion longer than max_length (truncation.completion = drop)"
                    break
                report.truncated_completions += 1
                ids = ids[:budget]
            completions.append(ids)
        same = (
            record.k == 2 and contexts[0] + completions[0] == contexts[1] + completions[1]
            if dropped is None
            else False
        )
        if dropped is None and record.ranking is not None and same:
            dropped = "the two completions are identical after tokenisation and truncation"
        if dropped is not None:
            report.drop(dropped, index)
            continue
        token_weights = None
        if record.spans is not None:
            token_weights = [
                span_token_weights(tokenizer, text, spans, len(ids))
                for text, spans, ids in zip(record.completions, record.spans, completions)
            ]
        groups.append(TokenizedGroup(prompt_ids, completions, contexts, roles, index, token_weights))
    return groups


def _completion_texts(records: list[Record]) -> tuple[list[str], dict[str, int]]:
    """Every distinct completion and context-prefix text once (repeated texts are tokenised once)."""
    index: dict[str, int] = {}
    for record in records:
        prefixes = [p for p in record.context_prefixes or [] if p]
        for text in [*record.completions, *prefixes]:
            index.setdefault(text, len(index))
    return list(index), index


def tokenizer_fingerprint(tokenizer: Any, truncation: Truncation, add_eos: bool = True) -> str:
    """Changes whenever tokenisation could change: vocabulary, template, special tokens, truncation."""
    payload = {
        "vocab": hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest(),
        "template": getattr(tokenizer, "chat_template", None),
        "special": {k: str(v) for k, v in tokenizer.special_tokens_map.items()},
        "class": type(tokenizer).__name__,
        "truncation": truncation.__dict__,
        "add_eos": add_eos,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
