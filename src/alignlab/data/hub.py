"""Whether the Hugging Face Hub can be reached, asked once and quickly, before anything is fetched from it.

Without network, ``huggingface_hub`` retries every request with back-off (a minute or more of "Retrying
in 8s" lines) and then raises an error whose message spans several lines. A Hub id that cannot be
fetched is instead one line that says so and how to use a local copy (:func:`unreachable_message`).

``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1`` for data) means "use only the local cache": the
Hub is then not contacted at all and a miss in the cache is the same one line.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

_TRUE = {"1", "true", "yes", "on"}
_checked: dict[str, bool] = {}


def endpoint() -> str:
    """The Hub's address (``HF_ENDPOINT`` when set, as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline(for_data: bool = False) -> bool:
    """Whether the user asked for the local cache only (``HF_HUB_OFFLINE``; ``HF_DATASETS_OFFLINE`` too
    when reading data)."""
    names = ["HF_HUB_OFFLINE"] + (["HF_DATASETS_OFFLINE"] if for_data else [])
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in names)


def reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub's host opens within ``timeout`` seconds (asked once per
    process and endpoint; a proxy set in the environment counts as reachable: it is asked instead)."""
    url = endpoint()
    if url not in _checked:
        if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
            _checked[url] = True
        else:
            parsed = urlparse(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
                    _checked[url] = True
            except OSError:
                _checked[url] = False
    return _checked[url]


def unreachable_message(what: str, hub_id: str, local_hint: str, for_data: bool = False) -> str:
    """One line: ``what`` (e.g. "model.path") names Hub id ``hub_id``, which is not in the local cache
    and cannot be fetched now, and ``local_hint`` says how to give a local copy instead."""
    why = (
        "the Hub is switched off here (HF_HUB_OFFLINE"
        + ("/HF_DATASETS_OFFLINE" if for_data else "")
        + "=1) and it is not in the local cache"
        if offline(for_data)
        else f"{endpoint()} cannot be reached from this machine (no network?) and it is not in the local cache"
    )
    return f"{what} '{hub_id}' is a Hugging Face Hub id, but {why}. {local_hint}"
