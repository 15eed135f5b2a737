"""Dataset-scale passes over a record stream: conversions chunk by chunk, tokenisation across processes.

Both take any iterable of records (e.g. :func:`alignlab.data.io.iter_records`) and hold one chunk at a
time per process, so memory stays flat in the file size.

- :func:`convert_stream` applies a conversion of :mod:`alignlab.data.conversions` to ``chunk_size``
  records at a time and yields the results; ``ratings_to_pairs``' random choices continue one
  ``random.Random`` across chunks, so the output equals the conversion of the whole list.
- :func:`tokenize_stream` tokenises chunks in ``num_proc`` worker processes (each loads the tokenizer
  once from a folder) and yields each chunk's groups in input order with their report; ``record_index``
  counts from the start of the stream. ``num_proc = 0`` tokenises in this process.
"""

from __future__ import annotations

import inspect
import itertools
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from alignlab.data.conversions import CONVERSIONS
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup, TokenizeReport, Truncation, tokenize_records

CHUNK = 4096


def chunks(records: Iterable[Record], size: int = CHUNK) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def check_conversion(name: str, options: dict[str, Any]) -> None:
    """Refuse an unknown conversion or option before any data is read (a stream fails late otherwise)."""
    if name not in CONVERSIONS:
        raise ValueError(f"unknown conversion {name!r}; choose one of {sorted(CONVERSIONS)}")
    params = [p for p in inspect.signature(CONVERSIONS[name]).parameters if p != "records"]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {unknown}; its options are {params}")


def convert_stream(
    records: Iterable[Record], name: str, dropped: Counter, chunk_size: int = CHUNK, **options: Any
) -> Iterator[Record]:
    """The conversion ``name`` over a stream; what it leaves out is added to ``dropped`` (by reason)."""
    check_conversion(name, options)
    if "seed" in inspect.signature(CONVERSIONS[name]).parameters:
        options["seed"] = random.Random(options.get("seed", 0))
    for chunk in chunks(records, chunk_size):
        out = CONVERSIONS[name](chunk, **options)
        dropped.update(out.dropped)
        yield from out.records


# ------------------------------------------------------------------ tokenisation across processes
_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer_path: str, truncation: Truncation, add_eos: bool) -> None:
    from transformers import AutoTokenizer

    _WORKER.update(
        tokenizer=AutoTokenizer.from_pretrained(tokenizer_path), truncation=truncation, add_eos=add_eos
    )


def _tokenize_chunk(job: tuple[int, list[Record]]) -> tuple[list[TokenizedGroup], TokenizeReport]:
    offset, records = job
    groups, report = tokenize_records(
        records, _WORKER["tokenizer"], _WORKER["truncation"], _WORKER["add_eos"]
    )
    for group in groups:
        group.record_index += offset
    report.dropped_examples = {k: [i + offset for i in v] for k, v in report.dropped_examples.items()}
    return groups, report


def tokenize_stream(
    records: Iterable[Record],
    tokenizer_path: str,
    truncation: Truncation | None = None,
    num_proc: int = 1,
    chunk_size: int = 1024,
    add_eos: bool = True,
) -> Iterator[tuple[list[TokenizedGroup], TokenizeReport]]:
    """Tokenise a stream in ``num_proc`` processes; yields (groups, report) per chunk, in input order.

    At most ``2 * num_proc`` chunks are in flight, so memory does not grow with the stream. The result is
    the same as :func:`~alignlab.data.tokenize.tokenize_records` over the whole list (record indices
    included): each record is tokenised on its own.
    """
    truncation = truncation or Truncation()
    jobs = _numbered(chunks(records, chunk_size))
    if num_proc <= 0:
        _init_worker(tokenizer_path, truncation, add_eos)
        yield from map(_tokenize_chunk, jobs)
        return
    import multiprocessing as mp

    context = mp.get_context("spawn")  # fork would copy a parent that may hold threads (torch, tokenizers)
    with context.Pool(num_proc, _init_worker, (tokenizer_path, truncation, add_eos)) as pool:
        pending: list[Any] = []
        for job in jobs:
            pending.append(pool.apply_async(_tokenize_chunk, (job,)))
            if len(pending) >= 2 * num_proc:
                yield pending.pop(0).get()
        for result in pending:
            yield result.get()


def _numbered(chunked: Iterable[list[Record]]) -> Iterator[tuple[int, list[Record]]]:
    offset = 0
    for chunk in chunked:
        yield offset, chunk
        offset += len(chunk)


def merge_reports(reports: Iterable[TokenizeReport]) -> TokenizeReport:
    """One report for a whole stream from its chunks' reports."""
    total = TokenizeReport()
    for r in reports:
        total.records += r.records
        total.kept += r.kept
        total.truncated_prompts += r.truncated_prompts
        total.truncated_completions += r.truncated_completions
        total.completions += r.completions
        total.fallback_chat_rendering += r.fallback_chat_rendering
        for reason, n in r.dropped.items():
            total.dropped[reason] += n
            examples = total.dropped_examples.setdefault(reason, [])
            examples += r.dropped_examples.get(reason, [])[: 5 - len(examples)]
    return total


# ------------------------------------------------------------------ scale-out over a `datasets` map
def _batch_records(batch: dict[str, list[Any]], where: str, indices: list[int] | None = None) -> list[Record]:
    """The alignlab records of one ``datasets`` batch (columns of alignlab rows; None = field absent)."""
    from alignlab.data.formats import get_format

    columns = list(batch)
    n = len(batch[columns[0]]) if columns else 0
    rows = [{c: batch[c][i] for c in columns if batch[c][i] is not None} for i in range(n)]
    names = indices if indices is not None else range(n)
    records = []
    for outcome in get_format("alignlab").to_records((f"{where}:row {i}", r) for i, r in zip(names, rows)):
        if not isinstance(outcome, Record):
            raise outcome if isinstance(outcome, Exception) else ValueError(str(outcome))
        records.append(outcome)
    return records


def _map_batch(batch: dict[str, list[Any]], fn: Any, where: str) -> dict[str, list[str]]:
    import json

    return {"record": [json.dumps(r.to_dict(), ensure_ascii=False) for r in fn(_batch_records(batch, where))]}


def map_records(
    dataset: Any, fn: Any, num_proc: int | None = None, batch_size: int = 1000, where: str = "dataset"
) -> Any:
    """Run ``fn(list[Record]) -> list[Record]`` over a ``datasets.Dataset`` of alignlab rows with
    ``Dataset.map(batched=True, num_proc=...)``: each worker decodes its batch into records, runs ``fn``
    and returns one JSON text column ``record`` (a schema that never varies between batches). Read the
    result with :func:`records_of`. ``fn`` sees one batch at a time, so it must be a per-record tool
    (conversions, labelling, relabelling), not a selector that compares the whole pool.
    """
    return dataset.map(
        _map_batch,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        remove_columns=dataset.column_names,
        fn_kwargs={"fn": fn, "where": where},
        desc=getattr(fn, "__name__", "alignlab tool"),
    )


def records_of(mapped: Any) -> Iterator[Record]:
    """The records a :func:`map_records` result holds, in order."""
    import json

    for i, text in enumerate(mapped["record"]):
        yield Record.from_dict(json.loads(text), f"mapped row {i}")


# ------------------------------------------------------------------ tokenisation over a `datasets` map
_TOKENIZERS: dict[str, Any] = {}
_TOKENIZED_COLUMNS = ("record_index", "kept", "prompt_ids", "completion_ids", "context_ids", "roles")


def _tokenize_batch(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer_path: str,
    truncation: Truncation,
    add_eos: bool,
    where: str,
) -> dict[str, list[Any]]:
    import json

    if tokenizer_path not in _TOKENIZERS:  # once per worker process
        from transformers import AutoTokenizer

        _TOKENIZERS[tokenizer_path] = AutoTokenizer.from_pretrained(tokenizer_path)
    records = _batch_records(batch, where, indices)
    groups, report = tokenize_records(records, _TOKENIZERS[tokenizer_path], truncation, add_eos)
    report.dropped_examples = {k: [indices[i] for i in v] for k, v in report.dropped_examples.items()}
    by_index = {g.record_index: g for g in groups}
    out: dict[str, list[Any]] = {name: [] for name in (*_TOKENIZED_COLUMNS, "token_weights", "report")}
    for i, index in enumerate(indices):  # a row per input record, so every batch has a first row
        group = by_index.get(i)
        out["record_index"].append(index)
        out["kept"].append(group is not None)
        out["prompt_ids"].append(group.prompt_ids if group else [])
        out["completion_ids"].append(group.completion_ids if group else [])
        out["context_ids"].append(group.context_ids if group else [])
        out["roles"].append(group.roles if group else [])
        weights = group.token_weights if group else None
        out["token_weights"].append(json.dumps(weights) if weights is not None else "")
        # the batch's report rides on its first row
        out["report"].append(json.dumps(dict(vars(report), dropped=dict(report.dropped))) if i == 0 else "")
    return out


def _tokenized_features() -> Any:
    """Fixed column types, so batches whose lists are all empty still concatenate with the others."""
    import datasets

    ids = datasets.Sequence(datasets.Value("int64"))
    return datasets.Features(
        record_index=datasets.Value("int64"),
        kept=datasets.Value("bool"),
        prompt_ids=ids,
        completion_ids=datasets.Sequence(ids),
        context_ids=datasets.Sequence(ids),
        roles=datasets.Sequence(datasets.Value("string")),
        token_weights=datasets.Value("string"),
        report=datasets.Value("string"),
    )


def tokenize_map(
    dataset: Any,
    tokenizer_path: str,
    truncation: Truncation | None = None,
    num_proc: int | None = None,
    batch_size: int = 1024,
    add_eos: bool = True,
    where: str = "dataset",
) -> Any:
    """Tokenise a ``datasets.Dataset`` of alignlab rows with ``Dataset.map(batched=True, num_proc=...)``.

    Each worker loads the tokenizer from ``tokenizer_path`` once and runs
    :func:`~alignlab.data.tokenize.tokenize_records` on its batch. The result has a row per input row:
    ``record_index`` (the row's position), ``kept``, the ids of a :class:`TokenizedGroup`, ``roles``,
    ``token_weights`` (JSON, ``""`` when none) and ``report`` (the batch's report as JSON on its first row).
    Read it with :func:`groups_of` and :func:`report_of`; the groups and the merged report equal
    ``tokenize_records`` over the whole list.
    """
    return dataset.map(
        _tokenize_batch,
        batched=True,
        with_indices=True,
        batch_size=batch_size,
        num_proc=num_proc,
        remove_columns=dataset.column_names,
        features=_tokenized_features(),
        fn_kwargs={
            "tokenizer_path": str(tokenizer_path),
            "truncation": truncation or Truncation(),
            "add_eos": add_eos,
            "where": where,
        },
        desc="tokenize",
    )


def groups_of(mapped: Any) -> Iterator[TokenizedGroup]:
    """The kept groups of a :func:`tokenize_map` result, in order."""
    import json

    for row in mapped:
        if row["kept"]:
            weights = json.loads(row["token_weights"]) if row["token_weights"] else None
            yield TokenizedGroup(
                row["prompt_ids"],
                row["completion_ids"],
                row["context_ids"],
                row["roles"],
                row["record_index"],
                weights,
            )


def report_of(mapped: Any) -> TokenizeReport:
    """One report for a :func:`tokenize_map` result (its batches' reports merged)."""
    import json

    def reports() -> Iterator[TokenizeReport]:
        for text in mapped["report"]:
            if text:
                fields = json.loads(text)
                yield TokenizeReport(**dict(fields, dropped=Counter(fields["dropped"])))

    return merge_reports(reports())
