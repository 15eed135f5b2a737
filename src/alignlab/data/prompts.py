"""Prompt sets for online training: each prompt with the other columns of its row (e.g. an ``answer``).

    rows = load_prompts("builtin:arithmetic")        # "What is 3 + 4? Answer with the number." / answer "7"
    rows = load_prompts("data/questions.jsonl")      # any JSONL/Parquet rows with a ``prompt`` field

A row's columns other than ``prompt`` travel with every completion sampled for it to the judge
(``JudgeBatch.columns``), so a verifiable-answer rule can compare a completion with the row's answer.

Built-in tasks, generated from a seed so they need no download and have a checkable answer:

- ``arithmetic``: one-digit addition, ``a + b`` with 0 ≤ a, b ≤ 9 (answer: the sum);
- ``arithmetic2``: two-digit addition and subtraction (answer: the result, possibly negative);
- ``sorting``: sort 3–5 one-digit numbers ascending (answer: the numbers space-separated).

``sim:text-world`` gives a simulated text world's prompts (judge them with ``{name: simulated}``, the
world's gold reward; see ``alignlab.sim.online``); ``package.module:function[@spec]`` the rows a Python
function returns.

Named sources are registered (``@prompt_source("PREFIX", summary)``; ``prompt_sources()`` lists them):
``builtin:`` here, ``sim:text-world`` by ``alignlab.sim.online``, which sits above this layer and is loaded
by name from ``PROVIDERS`` the first time the sources are looked up.

Each built-in task may be followed by ``@N`` (the number of rows, default 256) and ``/seed`` (default 0), e.g.
``builtin:arithmetic@64/1``; ``chat`` variants (``builtin:arithmetic-chat``) give the prompt as one user
message, for instruction-tuned models.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.data.records import Prompt

BUILTIN_PROMPT_TASKS = ("arithmetic", "arithmetic2", "sorting")


@dataclass
class PromptRow:
    """One prompt to sample from, and the other columns of its row (handed to the judge)."""

    prompt: Prompt
    columns: dict[str, Any] = field(default_factory=dict)


class PromptSetError(ValueError):
    """A prompt source is missing, malformed or unknown; the message names the file/line and the fix."""


def _arithmetic(rng: random.Random) -> PromptRow:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return PromptRow(f"What is {a} + {b}? Answer with the number.", {"answer": str(a + b), "task": "add"})


def _arithmetic2(rng: random.Random) -> PromptRow:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    if rng.random() < 0.5:
        return PromptRow(f"What is {a} + {b}? Answer with the number.", {"answer": str(a + b), "task": "add"})
    return PromptRow(f"What is {a} - {b}? Answer with the number.", {"answer": str(a - b), "task": "sub"})


def _sorting(rng: random.Random) -> PromptRow:
    nums = rng.sample(range(10), rng.randint(3, 5))
    text = " ".join(map(str, nums))
    return PromptRow(
        f"Sort the numbers from smallest to largest: {text}",
        {"answer": " ".join(map(str, sorted(nums))), "task": "sort"},
    )


_MAKERS = {"arithmetic": _arithmetic, "arithmetic2": _arithmetic2, "sorting": _sorting}


def builtin_prompts(spec: str) -> list[PromptRow]:
    """``NAME[-chat][@N][/SEED]`` (see the module docstring)."""
    rest, _, seed_text = spec.partition("/")
    name, _, count_text = rest.partition("@")
    chat = name.endswith("-chat")
    name = name.removesuffix("-chat")
    if name not in _MAKERS:
        raise PromptSetError(
            f"unknown built-in prompt set 'builtin:{spec}'; choose from "
            + ", ".join(f"builtin:{n}" for n in BUILTIN_PROMPT_TASKS)
            + " (optionally -chat, @N rows, /seed)"
        )
    try:
        count = int(count_text) if count_text else 256
        seed = int(seed_text) if seed_text else 0
    except ValueError:
        raise PromptSetError(
            f"builtin:{spec}: expected builtin:{name}@<rows>/<seed> with whole numbers"
        ) from None
    if count <= 0:
        raise PromptSetError(f"builtin:{spec}: the number of rows must be positive")
    rng = random.Random(f"{name}/{seed}")
    rows = [_MAKERS[name](rng) for _ in range(count)]
    if chat:
        for row in rows:
            row.prompt = [{"role": "user", "content": str(row.prompt)}]
    return rows


PromptSourceFn = Callable[[str], Any]


@dataclass(frozen=True)
class PromptSource:
    """A named prompt source: ``online.prompts: PREFIX[SPEC]`` calls ``fn(SPEC)``."""

    prefix: str
    fn: PromptSourceFn
    summary: str


_SOURCES: dict[str, PromptSource] = {}

# Packages above ``data`` that register prompt sources when imported. The layers forbid importing them here,
# so they are imported by name the first time the sources are listed (as judges and objectives load their
# catalogs); each registers its sources with :func:`prompt_source`.
PROVIDERS = ("alignlab.sim.online",)
_providers_loaded = False


def prompt_source(prefix: str, summary: str) -> Callable[[PromptSourceFn], PromptSourceFn]:
    """Register ``fn`` as the prompt source ``PREFIX[SPEC]``: ``fn`` receives SPEC (the text after the prefix)
    and returns PromptRows, prompt strings or mappings with a ``prompt`` field."""

    def register(fn: PromptSourceFn) -> PromptSourceFn:
        known = _SOURCES.get(prefix)
        if known is not None and known.fn is not fn:
            raise ValueError(f"prompt source '{prefix}' is registered twice")
        _SOURCES[prefix] = PromptSource(prefix, fn, summary)
        return fn

    return register


def prompt_sources() -> list[PromptSource]:
    """Every registered prompt source (the providers' too)."""
    global _providers_loaded
    if not _providers_loaded:
        import importlib

        for module in PROVIDERS:
            importlib.import_module(module)
        _providers_loaded = True
    return sorted(_SOURCES.values(), key=lambda s: s.prefix)


def _registered(source: str) -> PromptSource | None:
    """The registered source whose prefix ``source`` starts with (the longest one)."""
    matches = [s for s in prompt_sources() if source.startswith(s.prefix)]
    return max(matches, key=lambda s: len(s.prefix)) if matches else None


prompt_source("builtin:", "built-in checkable tasks: arithmetic, arithmetic2, sorting (-chat, @N, /seed)")(
    builtin_prompts
)


def load_prompts(source: str, limit: int | None = None) -> list[PromptRow]:
    """Prompt rows from a registered source (``builtin:NAME``, ``sim:text-world``, …), a Python function
    (``package.module:function[@spec]``) or a JSONL file (one object per line with a ``prompt`` field)."""
    named = ":" in source and not Path(source).exists()
    registered = _registered(source) if named else None
    if registered is not None:
        try:
            rows = _rows(registered.fn(source.removeprefix(registered.prefix)))
        except PromptSetError:
            raise
        except ValueError as err:
            raise PromptSetError(f"prompts '{source}': {err}") from None
    elif named:
        module, _, spec = source.partition("@")
        rows = prompt_function(module, spec)
    else:
        rows = _read_jsonl(Path(source))
    if not rows:
        raise PromptSetError(f"{source}: no prompts")
    return rows[:limit] if limit else rows


def prompt_function(reference: str, spec: str = "") -> list[PromptRow]:
    """Rows from a Python function named ``package.module:function`` (called with ``spec``, the text after
    ``@``); it returns PromptRows, prompt strings, or mappings with a ``prompt`` field."""
    import importlib

    module_name, _, attribute = reference.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise PromptSetError(
            f"prompts '{reference}': no function {attribute!r} in module {module_name!r} ({err}); expected "
            "a registered source (" + ", ".join(x.prefix for x in prompt_sources()) + "), a JSONL file, or "
            "package.module:function"
        ) from None
    try:
        produced = fn(spec) if spec else fn()
    except ValueError as err:
        raise PromptSetError(f"prompts '{reference}': {err}") from None
    return _rows(produced)


def _rows(produced: Any) -> list[PromptRow]:
    rows = []
    for item in produced:
        if isinstance(item, PromptRow):
            rows.append(item)
        elif isinstance(item, dict) and "prompt" in item:
            rows.append(PromptRow(item["prompt"], {k: v for k, v in item.items() if k != "prompt"}))
        else:
            rows.append(PromptRow(item))
    return rows


def _read_jsonl(path: Path) -> list[PromptRow]:
    if not path.exists():
        raise PromptSetError(f"{path}: no such prompt file (expected JSONL with a 'prompt' field per line)")
    rows: list[PromptRow] = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise PromptSetError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict) or "prompt" not in obj:
                raise PromptSetError(f"{path}:{number}: expected an object with a 'prompt' field")
            prompt = obj.pop("prompt")
            if not (isinstance(prompt, str) and prompt) and not _is_chat(prompt):
                raise PromptSetError(
                    f"{path}:{number}: 'prompt' must be non-empty text or a list of "
                    "{'role': ..., 'content': ...} messages"
                )
            rows.append(PromptRow(prompt, obj))
    return rows


def _is_chat(prompt: Any) -> bool:
    return (
        isinstance(prompt, list)
        and bool(prompt)
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in prompt)
    )
