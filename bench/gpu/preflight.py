"""First thing a GPU call runs (bench/gpu/run.sh): what is installed, and whether it fits together.

    python3 bench/gpu/preflight.py --wheels bench/gpu/wheels.txt --json ENV.json [--require-cuda]

Prints and writes: python, torch / CUDA / GPU, the versions of every package the bench touches, where
alignlab and the carried packages were imported from, and every requirement of a carried wheel that the
installed versions do not meet (a warning: e.g. datasets 5.2 asks for pyarrow>=24, which the image may not
have). Exits 1 when an import the bench needs fails, or with --require-cuda when torch sees no GPU.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import platform
import sys
import traceback
from pathlib import Path
from typing import Any

WATCHED = [
    "torch",
    "triton",
    "transformers",
    "trl",
    "datasets",
    "accelerate",
    "peft",
    "pydantic",
    "pydantic-core",
    "tokenizers",
    "safetensors",
    "huggingface-hub",
    "pyarrow",
    "pandas",
    "numpy",
    "fsspec",
    "dill",
    "multiprocess",
    "typing-extensions",
    "psutil",
    "pytest",
    "regex",
]
# What the bench and its tests import; a failure here makes every stage fail, so stop at once.
IMPORTS = [
    "alignlab.config",
    "alignlab.train.trainer",
    "alignlab.scoring.engine",
    "alignlab.scoring.flex",
    "datasets",
    "trl",
]


def carried(wheels_txt: Path) -> dict[str, str]:
    """name -> pinned version, from wheels.txt (``name==version  # why``)."""
    pins = {}
    for line in wheels_txt.read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            name, _, version = spec.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def version_of(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def unmet_requirements(names: list[str]) -> list[str]:
    """Each non-extra Requires-Dist of the given distributions that the installed versions do not satisfy."""
    from packaging.requirements import Requirement

    unmet = []
    for name in names:
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra, or another platform / python
            have = version_of(req.name)
            if have is None:
                unmet.append(f"{name} needs {req}: not installed")
            elif req.specifier and not req.specifier.contains(have, prereleases=True):
                unmet.append(f"{name} needs {req}: {have} installed")
    return unmet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, default=Path(__file__).with_name("wheels.txt"))
    ap.add_argument("--json", type=Path, default=None, help="also write the findings here")
    ap.add_argument("--require-cuda", action="store_true")
    args = ap.parse_args(argv)

    env: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    env["versions"] = {n: version_of(n) for n in WATCHED}
    pins = carried(args.wheels)
    names = list(pins)
    env["carried"] = {n: version_of(n) for n in names}
    env["unmet_requirements"] = unmet_requirements([n for n in names if version_of(n)])
    failed = []
    for module in IMPORTS:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001  (report any import failure, then stop)
            failed.append(f"{module}: {traceback.format_exc(limit=3).strip().splitlines()[-1]}")
    env["import_failures"] = failed
    origins = {}
    for module in ("alignlab", "transformers", "trl", "datasets", "pydantic"):
        mod = sys.modules.get(module)
        origins[module] = str(Path(mod.__file__).parent) if mod and mod.__file__ else None
    env["imported_from"] = origins
    import torch

    env["cuda_available"] = torch.cuda.is_available()
    if env["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "torch_cuda": torch.version.cuda,
        }
    print(json.dumps(env, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(env, indent=2))
    for line in env["unmet_requirements"]:
        print(f"preflight: WARNING {line}")
    if failed:
        print("preflight: FAILED imports:\n  " + "\n  ".join(failed))
        print("preflight: fix bench/gpu/wheels.txt (missing or mismatched package), re-run fetch_wheels.sh")
        return 1
    if args.require_cuda and not env["cuda_available"]:
        print("preflight: FAILED: torch sees no CUDA device; run this on the GPU machine (device tool)")
        return 1
    # The carried wheels sit first on PYTHONPATH; a different version here means they were not installed.
    shadowed = [
        f"{n} {env['carried'][n]} (wheels.txt: {pins[n]})" for n in names if env["carried"][n] != pins[n]
    ]
    if shadowed:
        print(f"preflight: FAILED: not the carried versions: {shadowed}; is /tmp/site first on PYTHONPATH?")
        return 1
    print("preflight: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
