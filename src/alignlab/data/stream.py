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
def _map_batch(batch: dict[str, list[Any]], fn: Any, where: str) -> dict[str, list[str]]:
    import json

    from alignlab.data.formats import get_format

    columns = list(batch)
    rows = [
        {c: batch[c][i] for c in columns if batch[c][i] is not None} for i in range(len(batch[columns[0]]))
    ]
    records = []
    for outcome in get_format("alignlab").to_records((f"{where}:row {i}", r) for i, r in enumerate(rows)):
        if not isinstance(outcome, Record):
            raise outcome if isinstance(outcome, Exception) else ValueError(str(outcome))
        records.append(outcome)
    return {"record": [json.dumps(r.to_dict(), ensure_ascii=False) for r in fn(records)]}


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
