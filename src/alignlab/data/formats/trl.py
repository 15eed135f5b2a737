"""TRL's dataset layouts: preference (``trl``, ``trl-conversational``), unpaired preference (``trl-unpaired``)
and prompt-completion / messages demonstrations (``trl-sft``).

Read from the TRL documentation "Dataset formats and types" (huggingface.co/docs/trl/dataset_formats,
v0.12-v0.17 pages): standard preference rows are ``{"prompt": str, "chosen": str, "rejected": str}`` or,
with an implicit prompt, ``{"chosen": str, "rejected": str}`` holding the whole text; conversational rows
hold lists of ``{"role", "content"}`` messages (``chosen``/``rejected`` are the assistant turns, or the whole
conversation when the prompt is implicit); unpaired preference rows are
``{"prompt", "completion", "label": bool}``; prompt-completion rows ``{"prompt", "completion"}`` and
language-modelling rows ``{"messages": [...]}``. An optional ``margin`` column (TRL's reward trainer)
goes to ``meta["margin"]``; any other extra column is kept under ``meta`` so nothing is lost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from alignlab.data.formats.base import (
    Format,
    Row,
    chat,
    has_columns,
    need,
    pair_indices,
    per_row,
    writer_error,
)
from alignlab.data.records import Record, RecordError

PREF_FIX = (
    "a TRL preference row is {prompt, chosen, rejected} (or {chosen, rejected} with an implicit prompt)"
)
UNPAIRED_FIX = "a TRL unpaired row is {prompt, completion, label: true|false}"


def _extra_meta(row: Row, used: set[str], where: str) -> dict[str, Any]:
    meta = {k: v for k, v in row.items() if k not in used and v is not None}
    margin = meta.get("margin")
    if margin is not None:
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
            raise RecordError(
                f"'margin' must be a finite number, got {margin!r:.40}",
                where,
                "write the reward margin as a number (TRL's reward trainer reads it as a float), or drop it",
            )
        meta["margin"] = float(margin)
    return meta


def _row_id(row: Row, where: str) -> str | None:
    """The row's ``id`` as text (integer ids are written in decimal); other types are refused."""
    value = row.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(
            f"'id' must be text or an integer, got {type(value).__name__}", where, "give each row a text id"
        )
    return str(value)


def _assistant_text(value: Any, name: str, where: str) -> str:
    """A completion given as text or as a list holding one assistant message."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role") != "assistant":
            roles = [m.get("role") if isinstance(m, dict) else type(m).__name__ for m in value]
            raise RecordError(
                f"'{name}' must hold exactly one assistant message, got roles {roles}",
                where,
                "multi-turn completions are not supported; keep earlier turns in 'prompt'",
            )
        return need(value[0], "content", where, "a message is {role, content}")
    raise RecordError(
        f"'{name}' must be text or a list of messages, got {type(value).__name__}", where, PREF_FIX
    )


def split_shared_text(chosen: str, rejected: str, where: str) -> tuple[str, str, str]:
    """Split two texts at their longest common prefix, backed off to a whitespace boundary."""
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and not chosen[n - 1].isspace():
        n -= 1  # do not cut inside a word: "The sky is b|lue" vs "b|lack" -> "The sky is |..."
    prompt, a, b = chosen[:n], chosen[n:], rejected[n:]
    if not prompt.strip() or not a.strip() or not b.strip():
        raise RecordError(
            "cannot find the prompt: chosen and rejected share no prefix, or one is a prefix of the other",
            where,
            "give an explicit 'prompt' column",
        )
    return prompt, a, b


def _pref_row(row: Row, where: str) -> Record:
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if chosen is None or rejected is None:
        missing = "chosen" if chosen is None else "rejected"
        raise RecordError(f"missing field '{missing}'", where, PREF_FIX)
    prompt = row.get("prompt")
    if prompt is None:  # implicit prompt: the shared beginning of both
        if isinstance(chosen, list) and isinstance(rejected, list):
            prompt, chosen, rejected = _split_shared_messages(chosen, rejected, where)
        elif isinstance(chosen, str) and isinstance(rejected, str):
            prompt, chosen, rejected = split_shared_text(chosen, rejected, where)
        else:
            raise RecordError("'chosen' and 'rejected' must both be text or both be message lists", where)
    elif not isinstance(prompt, (str, list)):
        raise RecordError(f"'prompt' must be text or messages, got {type(prompt).__name__}", where, PREF_FIX)
    return Record(
        prompt=[dict(m) if isinstance(m, dict) else m for m in prompt]
        if isinstance(prompt, list)
        else prompt,
        completions=[_assistant_text(chosen, "chosen", where), _assistant_text(rejected, "rejected", where)],
        ranking=[0, 1],
        id=_row_id(row, where),
        meta=_extra_meta(row, {"prompt", "chosen", "rejected", "id"}, where),
    )


def _split_shared_messages(chosen: list, rejected: list, where: str) -> tuple[list, list, list]:
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n == 0 or n == len(chosen) or n == len(rejected):
        raise RecordError(
            "cannot find the prompt: chosen and rejected conversations share no leading messages, "
            "or one contains the other",
            where,
            "give an explicit 'prompt' column",
        )
    return chosen[:n], chosen[n:], rejected[n:]


def _unpaired_row(row: Row, where: str) -> Record:
    prompt = row.get("prompt")
    if prompt is None:
        raise RecordError("missing field 'prompt'", where, UNPAIRED_FIX)
    if "completion" not in row or row["completion"] is None:
        raise RecordError("missing field 'completion'", where, UNPAIRED_FIX)
    label = row.get("label")
    if isinstance(label, int) and not isinstance(label, bool) and label in (0, 1):
        label = bool(label)
    if not isinstance(label, bool):
        raise RecordError(f"'label' must be true or false, got {label!r}", where, UNPAIRED_FIX)
    return Record(
        prompt=prompt,
        completions=[_assistant_text(row["completion"], "completion", where)],
        labels=[label],
        meta=_extra_meta(row, {"prompt", "completion", "label"}, where),
    )


def _sft_row(row: Row, where: str) -> Record:
    if "messages" in row and "prompt" not in row:
        messages = need(row, "messages", where, "a messages row is {messages: [{role, content}, ...]}", list)
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "assistant":
            raise RecordError(
                "the last message must be the assistant's reply", where, "end with an assistant turn"
            )
        if len(messages) < 2:
            raise RecordError("'messages' needs a prompt before the assistant reply", where)
        return Record(
            prompt=messages[:-1],
            completions=[messages[-1].get("content")],
            meta=_extra_meta(row, {"messages"}, where),
        )
    prompt = need(row, "prompt", where, "a prompt-completion row is {prompt, completion}", (str, list))
    completion = row.get("completion")
    if completion is None:
        raise RecordError(
            "missing field 'completion'", where, "a prompt-completion row is {prompt, completion}"
        )
    return Record(
        prompt=prompt,
        completions=[_assistant_text(completion, "completion", where)],
        meta=_extra_meta(row, {"prompt", "completion"}, where),
    )


# ------------------------------------------------------------------ writers
def _margin_cols(record: Record) -> dict[str, Any]:
    return {"margin": record.meta["margin"]} if "margin" in record.meta else {}


def _to_standard(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        c, r = pair_indices(record, i, "trl")
        if record.is_chat:
            raise writer_error(
                i,
                record,
                "trl (standard) needs a text prompt; this one is chat",
                "use --to trl-conversational",
            )
        rows.append(
            {
                "prompt": record.prompt,
                "chosen": record.completions[c],
                "rejected": record.completions[r],
                **_margin_cols(record),
            }
        )
    return rows


def _to_conversational(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        c, r = pair_indices(record, i, "trl-conversational")
        rows.append(
            {
                "prompt": chat(record.prompt),
                "chosen": [{"role": "assistant", "content": record.completions[c]}],
                "rejected": [{"role": "assistant", "content": record.completions[r]}],
                **_margin_cols(record),
            }
        )
    return rows


def _to_unpaired(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        if record.labels is None:
            raise writer_error(
                i,
                record,
                "trl-unpaired needs good/bad labels; this record has none",
                "add --convert pairs_to_labels (or ratings_to_labels)",
            )
        for text, label in zip(record.completions, record.labels, strict=True):
            if record.is_chat:
                rows.append(
                    {
                        "prompt": chat(record.prompt),
                        "completion": [{"role": "assistant", "content": text}],
                        "label": label,
                    }
                )
            else:
                rows.append({"prompt": record.prompt, "completion": text, "label": label})
    return rows


def _to_sft(records: Sequence[Record]) -> list[Row]:
    rows = []
    for i, record in enumerate(records):
        if record.k != 1:
            raise writer_error(
                i,
                record,
                f"trl-sft holds one completion per row; this record has K = {record.k}",
                "keep the chosen completions first",
            )
        rows.append({"prompt": record.prompt, "completion": record.completions[0]})
    return rows


def _is_pref(rows: Sequence[Row], conversational: bool) -> bool:
    if not has_columns(rows, "chosen", "rejected"):
        return False
    first = rows[0]
    if "prompt" in first:
        return isinstance(first["prompt"], list) == conversational
    if isinstance(first["chosen"], list):
        return conversational
    text = first["chosen"]
    looks_hh = isinstance(text, str) and "\n\nHuman:" in text and "\n\nAssistant:" in text
    return not conversational and not looks_hh


TRL = Format(
    "trl",
    "TRL standard preference: prompt/chosen/rejected text",
    lambda rows: _is_pref(rows, False),
    per_row(_pref_row),
    _to_standard,
    ("prompt", "chosen", "rejected"),
)
TRL_CONVERSATIONAL = Format(
    "trl-conversational",
    "TRL conversational preference: prompt/chosen/rejected messages",
    lambda rows: _is_pref(rows, True),
    per_row(_pref_row),
    _to_conversational,
    ("prompt", "chosen", "rejected"),
)
TRL_UNPAIRED = Format(
    "trl-unpaired",
    "TRL unpaired preference: prompt/completion/label",
    lambda rows: has_columns(rows, "prompt", "completion", "label"),
    per_row(_unpaired_row),
    _to_unpaired,
    ("prompt", "completion", "label"),
)
TRL_SFT = Format(
    "trl-sft",
    "TRL prompt-completion or messages demonstrations (K = 1, no feedback)",
    lambda rows: (
        (has_columns(rows, "prompt", "completion") and "label" not in rows[0])
        or (has_columns(rows, "messages") and "chosen" not in rows[0])
    ),
    per_row(_sft_row),
    _to_sft,
    ("prompt", "completion"),
)
