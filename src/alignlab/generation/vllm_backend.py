"""The ``vllm`` sampler: a vLLM engine colocated with training (extra ``vllm``, CUDA only).

The engine lives in the training process and shares its GPU (``gpu_memory_utilization`` bounds its KV
cache). After each optimiser step the trainer calls ``sync(policy)``: the policy's weights are copied into
the engine in place (no disk round trip), LoRA adapters merged into their base weights first, then the
engine's prefix cache is reset (cached prompt states were computed with the old weights).

Log-probs: the engine is started with ``logprobs_mode="processed_logprobs"``, so vLLM reports the sampled
token's log-prob on the distribution it was drawn from (temperature applied, top-k/top-p/min-p masked and
renormalised) — the Rollout's ``logprobs`` rule (``generation/filters.py``). vLLM cannot report the kept
mass alongside, so with a filter on, ``kept_logmass`` is None and ``meta["kept_logmass_recorded"]`` is
False (``support_logprobs`` refuses such rollouts: recompute the old log-probs with the engine). vLLM
applies min-p before top-k/top-p; the ``hf`` sampler follows Hugging Face's order (top-k, top-p, min-p);
the two supports differ only when min-p and top-p are both on.

Everything but starting the engine and its weight loader is plain Python tested on CPU with a stand-in
engine (tests/generation/test_vllm_backend.py): the parameter translation, the output → Rollout
conversion, the weight names and the LoRA merge. Written against vLLM's ``LLM`` API as TRL 1.16's colocate
mode drives it (``trl/generation/vllm_generation.py``): ``LLM.generate`` with token-id prompts,
``llm_engine.model_executor.driver_worker.model_runner.model.load_weights`` and ``reset_prefix_cache``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from alignlab.generation.hf import encode_sampler_prompts, stop_ids
from alignlab.generation.types import Rollout, SamplingParams

# Wrappers that sit in parameter names but not in vLLM's (activation checkpointing, FSDP1, PEFT's
# modules_to_save copy).
_WRAPPER_PARTS = ("_checkpoint_wrapped_module.", "_fsdp_wrapped_module.", "modules_to_save.default.")


def filters_on(params: SamplingParams) -> bool:
    return params.temperature > 0 and (params.top_k > 0 or params.top_p < 1.0 or params.min_p > 0.0)


def vllm_sampling_kwargs(params: SamplingParams, prompt_index: int, stops: Sequence[int]) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one prompt (one request of ``n`` samples).

    Each request gets its own seed derived from ``params.seed`` and the prompt's position, so a call is
    reproducible and no two prompts share a random stream. ``logprobs=0``: the sampled token's log-prob
    only. EOS and the stop ids end a sample and stay in its token ids.
    """
    return {
        "n": params.n,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,  # vLLM: -1 considers every token
        "min_p": params.min_p,
        "stop_token_ids": [int(t) for t in stops],
        "ignore_eos": params.ignore_eos,
        "seed": (params.seed * 1_000_003 + prompt_index) % (2**31 - 1),
        "logprobs": 0,
        "skip_special_tokens": True,
        "detokenize": False,  # text is decoded by the tokenizer the trainer uses
    }


def outputs_to_rollouts(
    outputs: Sequence[Any], prompt_ids: Sequence[list[int]], params: SamplingParams, tokenizer: Any
) -> list[Rollout]:
    """vLLM ``RequestOutput``s (one per prompt, in order) → Rollouts, grouped by prompt, samples in order.

    Each ``CompletionOutput`` gives ``index`` (sample number), ``token_ids``, ``logprobs`` (per token, a
    mapping token id → object with ``.logprob``) and ``finish_reason`` ("stop": EOS or a stop id, kept in
    ``token_ids``; "length": cut at ``max_tokens``).
    """
    if len(outputs) != len(prompt_ids):
        raise ValueError(f"vLLM returned {len(outputs)} outputs for {len(prompt_ids)} prompts")
    filtered = filters_on(params)
    meta = {
        "sampler": "vllm",
        "temperature": params.temperature,
        "top_k": params.top_k,
        "top_p": params.top_p,
        "min_p": params.min_p,
        "kept_logmass_recorded": not filtered,
    }
    rollouts: list[Rollout] = []
    for prompt_index, (output, ids) in enumerate(zip(outputs, prompt_ids)):
        completions = sorted(output.outputs, key=lambda c: c.index)
        if len(completions) != params.n:
            raise ValueError(
                f"vLLM returned {len(completions)} samples for prompt {prompt_index}, not {params.n}"
            )
        for sample_index, completion in enumerate(completions):
            tokens = [int(t) for t in completion.token_ids]
            if completion.logprobs is None or len(completion.logprobs) != len(tokens):
                raise ValueError(
                    f"vLLM gave no per-token log-probs for prompt {prompt_index} sample {sample_index} "
                    "(the sampler asks for logprobs=0; is the engine started with logprobs_mode?)"
                )
            logprobs = [float(step[token].logprob) for step, token in zip(completion.logprobs, tokens)]
            rollouts.append(
                Rollout(
                    prompt_index=prompt_index,
                    sample_index=sample_index,
                    prompt_ids=list(ids),
                    completion_ids=tokens,
                    logprobs=logprobs,
                    finished=completion.finish_reason == "stop",
                    text=tokenizer.decode(tokens, skip_special_tokens=True),
                    meta=dict(meta),
                    kept_logmass=None,
                )
            )
    return rollouts


def vllm_weight_name(name: str) -> str:
    """A parameter name of the (unwrapped, possibly PEFT) policy as vLLM's model names it."""
    name = name.removeprefix("module.")  # DDP
    name = name.removeprefix("base_model.model.")  # PEFT
    name = name.replace(".base_layer", "")  # PEFT's wrapped Linear
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def merged_weights(policy: Any) -> Iterator[tuple[str, Tensor]]:
    """The policy's weights under vLLM's names, LoRA adapters merged: W + ΔW for every adapted layer.

    ΔW comes from PEFT's own ``get_delta_weight`` (scale · B·A, fan-in/out handled by PEFT); the model is
    never modified, so repeated syncs cannot drift the base weights (merging and unmerging in place
    would round W each time). LoRA factors and PEFT's originals of ``modules_to_save`` are skipped.
    """
    model = getattr(policy, "module", policy)
    deltas: dict[str, Tensor] = {}
    for module_name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer"):
            active = [a for a in getattr(module, "active_adapters", []) if a in getattr(module, "lora_A", {})]
            if not active or getattr(module, "disable_adapters", False) or getattr(module, "merged", False):
                continue
            delta = sum(module.get_delta_weight(a) for a in active)
            deltas[f"{module_name}.base_layer.weight"] = delta
    for name, param in model.named_parameters():
        if "lora_" in name or "original_module" in name:
            continue
        tensor = param.detach()
        if name in deltas:
            tensor = tensor + deltas[name].to(tensor.dtype)
        yield vllm_weight_name(name), tensor


class VLLMSampler:
    """Colocated vLLM sampler. ``engine``: an ``LLM`` already built (tests pass a stand-in); otherwise one
    is started from the policy (its directory, or a temporary save of it) with ``gpu_memory_utilization``,
    ``max_model_len``, ``dtype``, ``seed`` and any other ``LLM`` keyword in ``engine_options``.
    ``params_factory`` builds vLLM's SamplingParams from keyword arguments (default ``vllm.SamplingParams``).
    """

    name = "vllm"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        engine: Any = None,
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        dtype: str = "auto",
        seed: int = 0,
        engine_options: dict[str, Any] | None = None,
        params_factory: Callable[..., Any] | None = None,
    ):
        self.tokenizer = tokenizer
        self.params_factory = params_factory
        self._workdir: tempfile.TemporaryDirectory | None = None
        if engine is None:
            engine = self._start_engine(
                model, gpu_memory_utilization, max_model_len, dtype, seed, engine_options
            )
        self.engine = engine
        self.sync(model)

    def _start_engine(
        self,
        model: Any,
        gpu_memory_utilization: float,
        max_model_len: int | None,
        dtype: str,
        seed: int,
        engine_options: dict[str, Any] | None,
    ) -> Any:  # pragma: no cover - needs vLLM and a GPU
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(
                f"the vllm sampler needs vLLM: pip install 'alignlab[vllm]' (on a CUDA machine) ({err})"
            ) from None
        if not torch.cuda.is_available():
            raise ValueError("the vllm sampler needs a CUDA GPU; use sampler 'hf' on this machine")
        from alignlab.models.parts import unwrap

        base = unwrap(model)
        path = getattr(base, "name_or_path", "") or ""
        if not path or not Path(path).is_dir():
            # Start from a copy of the policy as it is now (tiny and built-in models have no hub id).
            self._workdir = tempfile.TemporaryDirectory(prefix="alignlab-vllm-")
            base.save_pretrained(self._workdir.name, safe_serialization=True)
            self.tokenizer.save_pretrained(self._workdir.name)
            path = self._workdir.name
        return LLM(
            model=path,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            seed=seed,
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=True,
            **(engine_options or {}),
        )

    def _vllm_params(self, **kwargs: Any) -> Any:
        if self.params_factory is not None:
            return self.params_factory(**kwargs)
        from vllm import SamplingParams as VllmSamplingParams  # pragma: no cover - needs vLLM

        return VllmSamplingParams(**kwargs)  # pragma: no cover

    def sample(self, prompts: Sequence[Any], params: SamplingParams) -> list[Rollout]:
        encoded = encode_sampler_prompts(self.tokenizer, prompts)
        stops = stop_ids(self.tokenizer, params)
        requests = [{"prompt_token_ids": ids} for ids in encoded]
        sampling = [self._vllm_params(**vllm_sampling_kwargs(params, i, stops)) for i in range(len(encoded))]
        outputs = self.engine.generate(requests, sampling, use_tqdm=False)
        return outputs_to_rollouts(outputs, encoded, params, self.tokenizer)

    def sync(self, policy: Any) -> None:
        """Copy the policy's current weights (LoRA merged) into the engine, then drop its prefix cache."""
        runner_model = self.engine.llm_engine.model_executor.driver_worker.model_runner.model
        with torch.no_grad():
            for name, tensor in merged_weights(policy):
                runner_model.load_weights([(name, tensor)])
        self.engine.reset_prefix_cache()
