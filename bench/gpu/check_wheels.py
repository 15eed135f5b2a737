"""Check a wheel folder against bench/gpu/wheels.txt (run by fetch_wheels.sh, here, after the download).

    python bench/gpu/check_wheels.py .whl [--list bench/gpu/wheels.txt] [--image bench/gpu/image_packages.txt]

1. Exactly one wheel per listed package, at the listed version; any other wheel in the folder is removed
   (two versions of one package stop the whole install on the device).
2. Each wheel installs on the device: pure python, or built for CPython 3.12.
3. Every requirement of every wheel (METADATA Requires-Dist; extras skipped; markers evaluated for python
   3.12 on x86-64 Linux) names a package that is on the image or carried. Versions of image packages are
   mostly unknown from here: bench/gpu/preflight.py checks them on the device.
Runs with a bare python too (pip's vendored ``packaging``).
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # a python with pip only
    from pip._vendor.packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
DEVICE = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def norm(name: str) -> str:
    """PEP 503 normalised name (wheel files use underscores, lists use dashes)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        name, sep, version = spec.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise SystemExit(f"{path}:{number}: '{spec}' is not pinned as name==version")
        if norm(name) in pins:
            raise SystemExit(f"{path}:{number}: {name} is listed twice; keep one version")
        pins[norm(name)] = version.strip()
    return pins


def read_image(path: Path) -> set[str]:
    return {norm(x.strip()) for x in path.read_text().splitlines() if x.strip() and not x.startswith("#")}


def requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(m for m in zf.namelist() if m.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode("utf-8").splitlines()
    reqs = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate(DEVICE):
                reqs.append(req)
    return reqs


def check(folder: Path, pins: dict[str, str], image: set[str]) -> list[str]:
    """Problems found (empty: all good); removes wheels not in ``pins``."""
    found: dict[str, list[Path]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        if pins.get(norm(name)) != version:
            print(f"check_wheels: removing {wheel.name} (not in wheels.txt at that version)")
            wheel.unlink()
            continue
        found.setdefault(norm(name), []).append(wheel)
    problems = [
        f"{n}=={v}: {len(found.get(n, []))} wheels" for n, v in pins.items() if len(found.get(n, [])) != 1
    ]
    for wheels in found.values():
        tags = wheels[0].name[: -len(".whl")].split("-")[-3:]  # python tag, abi tag, platform tag
        if not (tags[0] in ("py3", "py312", "cp312") or tags[1] == "abi3"):
            problems.append(f"{wheels[0].name} is not built for CPython 3.12")
        if tags[2] != "any" and "x86_64" not in tags[2]:
            problems.append(f"{wheels[0].name} is not built for x86-64 Linux")
        for req in requirements(wheels[0]):
            if norm(req.name) not in image and norm(req.name) not in pins:
                problems.append(f"{wheels[0].name} needs {req}: neither on the image nor in wheels.txt")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--list", type=Path, default=HERE / "wheels.txt")
    ap.add_argument("--image", type=Path, default=HERE / "image_packages.txt")
    args = ap.parse_args(argv)
    pins = read_pins(args.list)
    problems = check(args.folder, pins, read_image(args.image))
    if problems:
        print("check_wheels: FAILED\n  " + "\n  ".join(problems))
        return 1
    print(f"check_wheels: {len(pins)} packages, one wheel each; every requirement is on the image or carried")
    return 0


if __name__ == "__main__":
    sys.exit(main())
