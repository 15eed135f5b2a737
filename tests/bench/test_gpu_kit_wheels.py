"""The GPU kit's wheel side (bench/gpu/): wheels.txt is consistent with pyproject and the image, the
fetch script keeps exactly the pinned wheels and refuses what would break the install on the device (checked
with a stand-in pip that writes small wheels: no network), and preflight lists unmet requirements.

Expected values come from wheels.txt and pyproject.toml parsed here, and from hand-made wheels and metadata.
"""

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
KIT = REPO / "bench" / "gpu"
sys.path.insert(0, str(KIT))

import check_wheels  # noqa: E402
import preflight  # noqa: E402


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_by_hand(path):
    """name -> version from a wheels.txt, parsed here without the kit's parser."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)", line)
            assert m, f"not pinned as name==version: {line!r}"
            assert norm(m[1]) not in pins, f"{m[1]} listed twice"
            pins[norm(m[1])] = m[2]
    return pins


# ----------------------------------------------------------------------------------------- wheels.txt
def test_wheels_txt_pins_one_version_each_and_covers_alignlab_and_trl():
    pins = pins_by_hand(KIT / "wheels.txt")
    assert check_wheels.read_pins(KIT / "wheels.txt") == pins
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # TRL at the version the bench extra pins.
    trl_pin = next(d for d in project["optional-dependencies"]["bench"] if d.startswith("trl"))
    assert trl_pin == f"trl=={pins['trl']}"
    # Every alignlab dependency (and the bench extra's) is on the image or carried.
    image = {norm(x) for x in (KIT / "image_packages.txt").read_text().split() if not x.startswith("#")}
    image = {n for n in image if n.isascii() and not n.startswith("(")}
    names = [re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0] for d in project["dependencies"]]
    names += [re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0] for d in project["optional-dependencies"]["bench"]]
    missing = [n for n in names if norm(n) not in image and norm(n) not in pins]
    assert not missing, f"neither on the GPU image nor in wheels.txt: {missing}"


# ----------------------------------------------------------------------------------------- wheels
def fake_wheel(folder, name, version, tag="py3-none-any", requires=()):
    path = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        meta += [f"Requires-Dist: {r}" for r in requires]
        zf.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", "\n".join(meta) + "\n")
    return path


def fake_pip(tmp_path, wheels_txt, overrides):
    """A python stand-in whose `-m pip download` writes small wheels for wheels.txt (no network)."""
    spec = {norm(n): (n, v) for n, v in pins_by_hand(wheels_txt).items()}
    spec.update(overrides)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    script = tmp_path / "python"
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, runpy, sys, zipfile
        if sys.argv[1:3] == ["-m", "pip"]:
            dest = sys.argv[sys.argv.index("-d") + 1]
            for name, version, *rest in json.load(open({str(tmp_path / "spec.json")!r})).values():
                tag, requires = rest + ["py3-none-any", []][len(rest):]
                stem = name.replace("-", "_")
                with zipfile.ZipFile(f"{{dest}}/{{stem}}-{{version}}-{{tag}}.whl", "w") as zf:
                    meta = [f"Name: {{name}}", f"Version: {{version}}"] + [f"Requires-Dist: {{r}}" for r in requires]
                    zf.writestr(f"{{stem}}-{{version}}.dist-info/METADATA", "\\n".join(meta) + "\\n")
        else:
            sys.argv = sys.argv[1:]
            runpy.run_path(sys.argv[0], run_name="__main__")
        """)
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def fetch(tmp_path, overrides=()):
    dest = tmp_path / "whl"
    dest.mkdir(exist_ok=True)
    python = fake_pip(tmp_path, KIT / "wheels.txt", dict(overrides))
    return dest, subprocess.run(
        ["bash", str(KIT / "fetch_wheels.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHON": str(python), "ALIGNLAB_WHEEL_DIR": str(dest)},
    )


def test_fetch_wheels_keeps_one_wheel_per_package_and_removes_stale_ones(tmp_path):
    pins = pins_by_hand(KIT / "wheels.txt")
    dest = tmp_path / "whl"
    dest.mkdir()
    fake_wheel(dest, "dill", "0.0.1")  # an older download of a listed package
    fake_wheel(dest, "kit-unlisted", "1.0")  # a package no longer listed
    dest, proc = fetch(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = sorted(norm(w.name.split("-")[0]) + "==" + w.name.split("-")[1] for w in dest.glob("*.whl"))
    assert kept == sorted(f"{n}=={v}" for n, v in pins.items())
    assert "removing dill-0.0.1" in proc.stdout and "removing kit_unlisted-1.0" in proc.stdout


def test_fetch_wheels_refuses_a_wheel_for_another_python_or_an_unmet_requirement(tmp_path):
    pins = pins_by_hand(KIT / "wheels.txt")
    name = next(iter(pins))
    wrong_python = {name: [name, pins[name], "cp311-cp311-manylinux_2_17_x86_64"]}
    _, proc = fetch(tmp_path, wrong_python)
    assert proc.returncode == 1 and "is not built for CPython 3.12" in proc.stdout
    needs_more = {
        name: [
            name,
            pins[name],
            "py3-none-any",
            ["kit-not-anywhere>=1", "windows-thing; sys_platform == 'win32'"],
        ]
    }
    (tmp_path / "second").mkdir()
    _, proc = fetch(tmp_path / "second", needs_more)
    assert proc.returncode == 1
    assert "needs kit-not-anywhere>=1: neither on the image nor in wheels.txt" in proc.stdout
    assert "windows-thing" not in proc.stdout  # a marker for another platform is not a requirement there


def test_preflight_lists_unmet_requirements_of_installed_packages(tmp_path, monkeypatch):
    info = tmp_path / "kitprobe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        textwrap.dedent("""\
        Metadata-Version: 2.1
        Name: kitprobe
        Version: 1.0
        Requires-Dist: pytest<1.0
        Requires-Dist: kit-absent-package-xyz>=2
        Requires-Dist: pytest>=1.0
        Requires-Dist: kit-other-absent; extra == "dev"
        Requires-Dist: kit-windows-only; sys_platform == "win32"
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib.metadata as md

    pytest_version = md.version("pytest")
    assert preflight.unmet_requirements(["kitprobe"]) == [
        f"kitprobe needs pytest<1.0: {pytest_version} installed",
        "kitprobe needs kit-absent-package-xyz>=2: not installed",
    ]
