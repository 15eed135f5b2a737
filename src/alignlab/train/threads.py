"""How many torch CPU threads a run uses (``train.threads``).

Measured on the project's 2-core machine with bench/threads.py (one DPO forward + backward on a fixed
batch, the settings alternating in one process, load average ~10 from other jobs): tiny:llama took 0.25 s
a step with 1 thread and 4.2 s with 2 (16.8x slower); SmolLM2-135M: see docs/config.md. torch's default,
one thread per core, is fastest only while the cores are idle: each parallel region waits for its slowest
thread, and on a busy machine one of them is always waiting for a core. ``auto`` therefore uses the cores
that are idle when the run starts, and at least one.
"""

from __future__ import annotations

import math
import os


def idle_cores(cores: int | None = None, load: float | None = None) -> int:
    """Cores not taken by other work: ``cores − load average`` (1 minute), rounded, in [1, cores]."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform: assume the machine is ours
            load = 0.0
    return max(1, min(cores, math.floor(cores - load + 0.5)))


def resolve_threads(setting: int | str | None) -> tuple[int | None, str]:
    """The thread count for ``train.threads`` (None: leave the process's setting, torch's default unless
    the caller set one, as the quickstart does) and why, for the run's log."""
    if setting is None:
        return None, "train.threads: null, left as this process set it"
    if setting == "auto":
        threads = idle_cores()
        why = f"auto: {threads} idle core(s) of {os.cpu_count()} at the start"
        limit = os.environ.get("OMP_NUM_THREADS", "")
        if limit.isdigit() and 0 < int(limit) < threads:  # the user's own limit for this process
            threads, why = int(limit), f"auto, limited by OMP_NUM_THREADS={limit}"
        return threads, why + " (train.threads)"
    return int(setting), "train.threads"
