"""Benchmark: records/s and peak memory of `data validate`, `data convert` and tokenisation on a synthetic
file, at two sizes, to show that memory stays flat in the file size and tokenisation scales with processes.

    python bench/data_throughput.py                       # 1,000,000 and 100,000 records (minutes)
    python bench/data_throughput.py --records 20000       # quick check: 20,000 and 2,000 records
    python bench/data_throughput.py --procs 0,1,2 --json

The file is alignlab JSONL (gzipped with ``--gz``): pairs with a chat prompt of about 60 words, two
completions of about 40 words, a score per completion and an id; written once per size, with a fixed
seed. Each measurement runs in a fresh Python process (``--op``), so its peak memory (``ru_maxrss``) is
its own (VmHWM): the interpreter, the imports and what the operation holds; workers' peaks are sampled
every 50 ms (psutil). The sizes alternate (small, large,
small, large, ...) over ``--repeats`` so contention on a shared machine hits both; medians are reported.

- ``validate``: :func:`alignlab.data.validate.validate_file` (every check of ``alignlab data validate``).
- ``convert``: the ``alignlab data convert`` path: :func:`iter_records` → ``ratings_to_pairs`` (streamed)
  → :func:`write_records` as TRL conversational JSONL.
- ``tokenize``: :func:`alignlab.data.stream.tokenize_stream` with the tiny byte-level BPE tokenizer of
  :mod:`alignlab.models.tiny` (ChatML template), for each ``--procs`` value (0 = in the parent process);
  peak memory is the parent's and the largest worker's.

Printed: records/s and peak MiB per operation and size; the ratio of peak memory large/small (target
≤ 1.2) and the tokenisation speed-up of N processes over 1 (on the records/s after the workers'
start-up, when the first chunk is back), both from this run; and the load average. With ``--json``, each
row also has the CPU seconds of every measurement (its process and workers, ``cpu_s@N``) and its wall
seconds; the per-measurement lines on stderr carry the 1-minute load average before and after it.
``--tokenize-records`` sets tokenisation's sizes apart (it is the slowest step: a 1M-record run took 35
minutes with 1 worker and 24 with 2 at load ~11 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

WORDS = (
    "the model answers a question about data with care and a short list of reasons why each step holds "
    "under the rules we wrote for it so that people can check it again later on their own machines"
).split()


def write_synthetic(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    opener = __import__("gzip").open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            prompt = " ".join(rng.choice(WORDS) for _ in range(60))
            a, b = (" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(2))
            record = {
                "prompt": [{"role": "user", "content": prompt}],
                "completions": [a, b],
                "ranking": [0, 1],
                "scores": [{"q": rng.randint(3, 5)}, {"q": rng.randint(0, 2)}],
                "id": f"r{i}",
            }
            f.write(json.dumps(record) + "\n")


def own_peak_mib() -> float:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries that over ``exec``
    from the parent, so every child would report at least the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class WorkerPeak:
    """The largest resident memory of any child process (tokenisation workers), sampled every 50 ms."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.peak = 0.0
        self._me, self._stop = psutil.Process(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for child in self._me.children(recursive=True):
                try:
                    self.peak = max(self.peak, child.memory_info().rss / 2**20)
                except Exception:  # the child ended between listing and reading
                    pass

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_op(op: str, file: str, procs: int, tokenizer: str, out: str) -> dict:
    """One measurement in this (fresh) process."""
    workers = WorkerPeak()
    start = time.perf_counter()
    if op == "validate":
        from alignlab.data.validate import validate_file

        report = validate_file(file)
        n = report.records
        assert report.ok, report.render()[:2000]
    elif op == "convert":
        from collections import Counter

        from alignlab.data.io import LoadReport, iter_records, write_records
        from alignlab.data.stream import convert_stream

        load = LoadReport(file)
        pairs = convert_stream(iter_records(file, report=load), "ratings_to_pairs", Counter(), aspect="q")
        write_records(pairs, out, "trl-conversational")
        n = load.records
    elif op == "tokenize":
        from alignlab.data.io import iter_records
        from alignlab.data.stream import tokenize_stream

        n = tokens = 0
        first = None
        for groups, report in tokenize_stream(iter_records(file), tokenizer, num_proc=procs):
            if first is None:  # the workers are up and the first chunk is back: steady state from here
                first = (time.perf_counter(), report.records)
            n += report.records
            tokens += sum(g.num_tokens for g in groups)
    else:
        raise SystemExit(f"unknown --op {op}")
    seconds = time.perf_counter() - start
    steady = {}
    if op == "tokenize" and first is not None and n > first[1]:
        steady = {
            "startup_s": round(first[0] - start, 2),
            "steady_records_per_s": round((n - first[1]) / (time.perf_counter() - first[0]), 1),
        }
    return {
        "op": op,
        "procs": procs,
        "records": n,
        "seconds": round(seconds, 2),
        "records_per_s": round(n / seconds, 1),
        "peak_mib": round(own_peak_mib(), 1),
        "peak_worker_mib": round(workers.stop(), 1),
        **steady,
    }


def measure(op: str, file: Path, procs: int, tokenizer: str, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--op", op, "--file", str(file), "--procs", str(procs)]
    cmd += ["--tokenizer", tokenizer, "--out", str(work / "out.jsonl")]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    before, load = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{op} failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # CPU seconds of the measuring process and its workers (reaped children count here), beside wall time:
    # on a shared machine wall time is what the others left, CPU time is what the work cost.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["cpu_s"] = round(cpu, 1)
    result["loadavg_1m_before_after"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="the large size (small = 1/10)")
    parser.add_argument(
        "--tokenize-records",
        type=int,
        default=None,
        help="the large size for tokenisation (default: --records; small = 1/10)",
    )
    parser.add_argument("--ops", default="validate,convert,tokenize")
    parser.add_argument("--procs", default="1,2", help="tokenisation process counts (0 = in-process)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--gz", action="store_true", help="gzip the synthetic file")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--op", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op:  # a child measuring one operation
        print(json.dumps(run_op(args.op, args.file, int(args.procs), args.tokenizer, args.out)))
        return

    from alignlab.models.tiny import tiny_tokenizer

    sizes = [args.records // 10, args.records]
    token_sizes = (
        [n // 10 for n in [args.tokenize_records]] + [args.tokenize_records]
        if args.tokenize_records
        else sizes
    )
    procs = [int(p) for p in args.procs.split(",")]
    with tempfile.TemporaryDirectory(prefix="data-bench-") as tmp:
        work = Path(tmp)
        tokenizer_dir = work / "tokenizer"
        tiny_tokenizer().save_pretrained(tokenizer_dir)
        files = {}
        for n in sorted(set(sizes + token_sizes)):
            files[n] = work / (f"synthetic-{n}.jsonl" + (".gz" if args.gz else ""))
            start = time.perf_counter()
            write_synthetic(files[n], n)
            print(
                f"wrote {n} records ({files[n].stat().st_size / 2**20:.0f} MiB) in "
                f"{time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )
        plan = [(op, p) for op in args.ops.split(",") for p in (procs if op == "tokenize" else [0])]
        results: dict[tuple[str, int, int], list[dict]] = {}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for op, p in plan:
                for n in token_sizes if op == "tokenize" else sizes:  # small then large, back to back
                    r = measure(op, files[n], p, str(tokenizer_dir), work)
                    results.setdefault((op, p, n), []).append(r)
                    print(json.dumps(r), file=sys.stderr)
        load_after = os.getloadavg()

    def med(op: str, p: int, n: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(op, p, n)])

    rows = []
    for op, p in plan:
        row = {"op": op, "procs": p if op == "tokenize" else None}
        op_sizes = token_sizes if op == "tokenize" else sizes
        row["sizes"] = op_sizes
        for n in op_sizes:
            row[f"records_per_s@{n}"] = med(op, p, n, "records_per_s")
            row[f"peak_mib@{n}"] = med(op, p, n, "peak_mib")
            row[f"cpu_s@{n}"] = med(op, p, n, "cpu_s")
            row[f"seconds@{n}"] = med(op, p, n, "seconds")
            if op == "tokenize" and p > 0:
                row[f"peak_worker_mib@{n}"] = med(op, p, n, "peak_worker_mib")
            if op == "tokenize" and all("steady_records_per_s" in r for r in results[(op, p, n)]):
                row[f"steady_records_per_s@{n}"] = med(op, p, n, "steady_records_per_s")
                row[f"startup_s@{n}"] = med(op, p, n, "startup_s")
        row["peak_ratio_large_over_small"] = round(
            row[f"peak_mib@{op_sizes[1]}"] / row[f"peak_mib@{op_sizes[0]}"], 3
        )
        if op == "tokenize" and p > 0:
            worker = [row[f"peak_worker_mib@{n}"] for n in op_sizes]
            row["worker_peak_ratio"] = round(worker[1] / worker[0], 3)
        rows.append(row)
    one = [r for r in rows if r["op"] == "tokenize" and r["procs"] == 1]
    for r in rows:
        if one and r["op"] == "tokenize":
            key = f"steady_records_per_s@{token_sizes[1]}"
            key = key if key in r and key in one[0] else f"records_per_s@{token_sizes[1]}"
            r["speedup_over_1_proc"] = round(r[key] / one[0][key], 2)
    summary = {
        "sizes": sizes,
        "tokenize_sizes": token_sizes,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "results": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(
        f"sizes {sizes[0]} and {sizes[1]} records (tokenise: {token_sizes[0]} and {token_sizes[1]}); {os.cpu_count()} CPUs; load average before "
        f"{summary['loadavg_before']}, after {summary['loadavg_after']}"
    )
    for r in rows:
        name = r["op"] + (f" ({r['procs']} proc)" if r["procs"] is not None else "")
        speeds = ", ".join(f"{r[f'records_per_s@{n}']:.0f}/s @ {n}" for n in r["sizes"])
        peaks = ", ".join(f"{r[f'peak_mib@{n}']:.0f} MiB @ {n}" for n in r["sizes"])
        extra = f"; workers {r['worker_peak_ratio']}x" if "worker_peak_ratio" in r else ""
        big = r["sizes"][1]
        if f"steady_records_per_s@{big}" in r:
            extra += (
                f"; after start-up ({r[f'startup_s@{big}']:.0f} s) {r[f'steady_records_per_s@{big}']:.0f}/s"
            )
        extra += f"; speed-up over 1 proc {r['speedup_over_1_proc']}x" if "speedup_over_1_proc" in r else ""
        print(f"  {name:18s} {speeds}; peak {peaks}; large/small {r['peak_ratio_large_over_small']}x{extra}")


if __name__ == "__main__":
    main()
