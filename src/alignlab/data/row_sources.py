"""The raw rows of a data source, before any format reads them: a JSONL (also gzipped), JSON-array or Parquet
file, a ``datasets`` folder saved to disk, a Hub dataset id (``owner/name``) or one file of a Hub dataset
repository (``hf://datasets/owner/name/path``). Each row comes as ``(where, row dict or RecordError)``,
``where`` naming the file and line (or row)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alignlab.data.containers import (
    RowOrError,
    check_container,
    columnar_row,
    json_array_rows,
    jsonl_rows,
    parquet_rows,
    starts_with,
)
from alignlab.data.load_report import LoadReport
from alignlab.data.records import RecordError

# One file of a Hub dataset repository, e.g. hf://datasets/Anthropic/hh-rlhf/harmless-base/test.jsonl.gz
HUB_FILE_PREFIX = "hf://datasets/"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def iter_rows(
    source: str | os.PathLike, split: str | None = None, report: LoadReport | None = None
) -> Iterator[RowOrError]:
    """The raw rows of a file, folder or Hub id as ``(where, row dict or RecordError)``, streamed, before
    any format reads them (for tools that read a layout of their own, e.g. OpenAssistant trees)."""
    report = report if report is not None else LoadReport(str(source))
    for where, row in open_rows(source, split, report):
        report.rows += 1
        yield where, row


def open_rows(source: str | os.PathLike, split: str | None, report: LoadReport) -> Iterator[RowOrError]:
    if str(source).startswith(HUB_FILE_PREFIX):  # one file of a Hub dataset repository
        yield from _dataset_rows(_load_hub(str(source), split, report), str(source))
        return
    path = Path(source)
    name = path.name.lower()
    if path.is_dir():
        yield from _dataset_rows(_load_from_disk(path, split, report), str(path))
    elif path.is_file():
        if name.endswith(".parquet"):
            yield from parquet_rows(path)
            return
        check_container(path)
        if name.endswith((".json", ".json.gz")) and starts_with(path, "["):
            yield from json_array_rows(path)
        else:
            yield from jsonl_rows(path, report.notes)
    elif path.exists():
        raise RecordError(
            "not a file or folder that holds data", str(path), "give a JSONL/JSON/Parquet file or a folder"
        )
    elif _HUB_ID.match(str(source)) and not str(source).startswith((".", "/")):
        yield from _dataset_rows(_load_hub(str(source), split, report), f"{source}[{split or 'train'}]")
    else:
        raise RecordError(
            "no such file or folder", str(source), "check the path (or give a Hub id as owner/name)"
        )


def _pick_split(dataset: Any, split: str | None, where: str, report: LoadReport) -> Any:
    if not hasattr(dataset, "keys"):  # a Dataset, not a DatasetDict
        return dataset
    splits = list(dataset.keys())
    if split is not None:
        if split not in splits:
            raise RecordError(
                f"no split {split!r}; the splits are {splits}", where, "pass one of them as --split"
            )
        return dataset[split]
    if len(splits) == 1 or "train" in splits:
        chosen = splits[0] if len(splits) == 1 else "train"
        if len(splits) > 1:
            report.notes.append(f"read split {chosen!r} of {splits}; pass --split for another")
        return dataset[chosen]
    raise RecordError(f"the dataset has splits {splits}", where, "pass one of them as --split")


def _load_from_disk(path: Path, split: str | None, report: LoadReport) -> Any:
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise RecordError(
            f"not a saved `datasets` dataset ({err})",
            str(path),
            "give a file, or a folder written by save_to_disk",
        ) from None
    return _pick_split(dataset, split, str(path), report)


def _load_hub(name: str, split: str | None, report: LoadReport) -> Any:
    """A Hub dataset (``owner/name``, ``split`` of it) or one file of a Hub dataset repository
    (``hf://datasets/owner/name/path/file.jsonl.gz``, read whole: ``split`` does not apply)."""
    import datasets

    from alignlab.data import hub

    if name.startswith(HUB_FILE_PREFIX):
        builder = "parquet" if name.lower().endswith(".parquet") else "json"
        load = functools.partial(datasets.load_dataset, builder, data_files=name, split="train")
    else:
        load = functools.partial(datasets.load_dataset, name, split=split)
    cut_off = hub.offline(for_data=True) or not hub.reachable()
    try:
        if cut_off:  # the local cache answers at once, where requests would retry for a minute
            with _datasets_offline():
                dataset = load()
        else:
            dataset = load()
    except Exception as err:  # network, auth or missing-dataset errors all land here
        if cut_off:
            raise RecordError(
                hub.unreachable_message(
                    "data",
                    name,
                    "Download it where there is network and give its local path instead "
                    "(a JSONL/JSON/Parquet file or a save_to_disk folder)",
                    for_data=True,
                )
            ) from None
        raise RecordError(
            f"cannot load Hub dataset: {err}", name, "check the id, your network and HF_TOKEN"
        ) from None
    return _pick_split(dataset, split, name, report)


@contextlib.contextmanager
def _datasets_offline() -> Iterator[None]:
    """``datasets`` reads ``HF_HUB_OFFLINE`` through its ``config`` module, once, at import: set it there."""
    import datasets.config

    previous = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = previous


def _dataset_rows(dataset: Any, where: str) -> Iterator[RowOrError]:
    for i, row in enumerate(dataset):
        yield columnar_row(row, f"{where}:row {i}")
