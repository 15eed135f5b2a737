"""One decoding step of a Llama/Qwen2-shaped model without transformers' per-call machinery.

A decoding step of the ``hf`` sampler feeds one token per row. For small models on CPU most of the time of
``model(input_ids=…, attention_mask=…, cache=…)`` is not the matrix products but what surrounds them: the
output-capturing and config-default decorators, the causal-mask builder (which also reads the whole padding
mask to decide whether a mask is needed), the cache wrapper, the attention-interface lookup and the output
dataclasses — about 40% of a step of the 5.6M-parameter bench model (docs/performance.md).
:func:`lean_step` runs the same step by calling the model's own modules (embedding, rotary embedding, norms,
q/k/v/o projections, MLP, LM head) and the same functions (the model family's ``apply_rotary_pos_emb``,
``torch.nn.functional.scaled_dot_product_attention`` with the arguments transformers' ``sdpa`` attention
passes for a single query; ``F.rms_norm`` for transformers' RMSNorm and ``F.linear``/``F.silu`` for its
MLP, the same operations in fewer calls), in the same order, so the logits are the same bits as the generic forward's
(``tests/generation/test_lean_step.py`` compares them with ``torch.equal``, and whole sampler runs id for id
and log-prob for log-prob).

It applies only where that equivalence was checked (:func:`lean_step_supported`): ``LlamaForCausalLM`` and
``Qwen2ForCausalLM`` (SmolLM2 is a Llama) with ``sdpa`` attention (or the engine's packed attention, which
decodes with sdpa), full attention in every layer (no sliding
window), no hub kernels, and the cache layers reserved by ``generation/kv_cache.py``. Any other model takes
the generic forward.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from alignlab.generation import kv_cache
from alignlab.scoring.flex import ATTENTION_NAME

# Model classes whose decoder layer is: x + attn(input_layernorm(x)), then h + mlp(post_attention_layernorm(h)),
# and whose attention is q/k/v projections, rotary on q and k, cache update, sdpa, o projection (read in
# transformers' modeling_llama.py and modeling_qwen2.py, 5.x).
SUPPORTED = ("LlamaForCausalLM", "Qwen2ForCausalLM")
# Attention implementations that decode one query with transformers' sdpa_attention_forward: "sdpa", and the
# engine's packed attention (scoring/flex.py), which hands a 2D-padding-mask call (generation) to it
SDPA_ATTENTIONS = ("sdpa", ATTENTION_NAME)


def lean_step_supported(model: Any) -> str | None:
    """None when :func:`lean_step` reproduces ``model``'s decoding step; otherwise why not (a sentence)."""
    name = type(model).__name__
    if name not in SUPPORTED:
        return f"{name} is not one of {', '.join(SUPPORTED)}"
    config = model.config
    attention = getattr(config, "_attn_implementation", None)
    if attention not in SDPA_ATTENTIONS:
        return f"attention implementation {attention!r} is not one of {', '.join(SDPA_ATTENTIONS)}"
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        return "some layers use sliding-window attention"
    if getattr(config, "pretraining_tp", 1) not in (1, None):
        return "pretraining_tp > 1"
    # lean_step re-implements the forwards of the body, the decoder layers and their attention: none may
    # have been swapped on the instance (hub kernels' kernelize, accelerate's offloading hooks)
    body = model.model
    for module in (model, body, *body.layers, *(layer.self_attn for layer in body.layers)):
        if "forward" in vars(module):
            return f"the forward of {type(module).__name__} is replaced on the instance"
    if _rotary_function(body.layers[0].self_attn) is None:
        return f"{type(model).__module__} has no apply_rotary_pos_emb"
    return None


def stateless_rotary(model: Any) -> bool:
    """Whether the rotary embedding keeps no state between calls: transformers' "dynamic" and "longrope" types
    rewrite their ``inv_freq`` buffer as the sequence grows, which must not become an inference-mode tensor
    (the sampler decodes in ``torch.inference_mode`` only when this holds)."""
    rope_type = getattr(model.model.rotary_emb, "rope_type", "default")
    types = rope_type.values() if isinstance(rope_type, dict) else [rope_type]
    return not any("dynamic" in kind or kind == "longrope" for kind in types)


def _rotary_function(attention: Any) -> Callable[..., Any] | None:
    """The ``apply_rotary_pos_emb`` the attention's forward calls: with the ``kernels`` package installed,
    transformers gives each attention module its own wrapper (``_kernel_funcs``) that the global routes to."""
    own = vars(attention).get("_kernel_funcs") or {}
    if "apply_rotary_pos_emb" in own:
        return own["apply_rotary_pos_emb"]
    return getattr(sys.modules[type(attention).__module__], "apply_rotary_pos_emb", None)


class LeanStep:
    """:func:`lean_step` for one model, with what does not change between steps looked up once: each layer's
    modules, whether a projection is a plain ``nn.Linear`` (then ``F.linear`` on its weight and bias is called
    directly, which is its forward) and whether the rotary function is transformers' own (then it is applied
    to the queries and keys of a layer in one pass, see :func:`_rotate`). Build it per ``sample`` call: it
    holds the modules, not copies of the weights."""

    def __init__(self, model: Any, positions: int = 0):
        self.model, self.body = model, model.model
        # positions > 0 (a decoding loop that knows how far it goes) and a rotary embedding without state: its
        # cos/sin for positions [0, positions) once, read by index at each step (elementwise functions of the
        # position, so the same bits as computing them per step; ~10 calls a step fewer)
        self.tables = _rotary_tables(model, positions) if positions > 0 and stateless_rotary(model) else None
        self.layers = []
        for layer in self.body.layers:
            attention = layer.self_attn
            rotary = _rotary_function(attention)
            self.layers.append(
                (
                    _norm(layer.input_layernorm),
                    _linear(attention.q_proj),
                    _linear(attention.k_proj),
                    _linear(attention.v_proj),
                    rotary,
                    _is_kernelized(rotary),  # False: transformers' own formula, applied by _rotate
                    _linear(attention.o_proj),
                    _norm(layer.post_attention_layernorm),
                    _mlp(layer.mlp),
                    attention.head_dim,
                    attention.num_key_value_groups,
                    attention.scaling,
                )
            )
        self.norm = _norm(self.body.norm)
        self.lm_head = _linear(model.lm_head)

    def __call__(self, token: Tensor, position: Tensor, mask: Tensor | None, cache: Any) -> Tensor:
        """Next-token logits [B, V] (see :func:`lean_step`)."""
        rows = token.shape[0]
        hidden = self.body.embed_tokens(token[:, None])  # [B, 1, H], as the forward embeds input_ids [B, 1]
        if self.tables is not None and int(position.max()) < self.tables[0].shape[0]:
            table_cos, table_sin, table_signed_sin = self.tables
            cos, sin, signed_sin = table_cos[position], table_sin[position], table_signed_sin[position]
            half = cos.shape[-1] // 2
        else:
            cos, sin = self.body.rotary_emb(hidden, position)
            half = cos.shape[-1] // 2
            signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
        cos4, signed_sin4 = cos[:, :, None], signed_sin[:, :, None]
        # sdpa turns a bool mask into 0 / -inf in the query's dtype at every call; once per step here
        sdpa_mask = None
        if mask is not None:
            zero = torch.zeros((), dtype=hidden.dtype, device=hidden.device)
            sdpa_mask = torch.where(mask.logical_not(), float("-inf"), zero)[:, None, None, :]
        for index, layer in enumerate(self.layers):
            norm1, q_proj, k_proj, v_proj, rotary, kernelized, o_proj, norm2, mlp, head_dim, groups, scale = (
                layer
            )
            residual = hidden
            hidden = norm1(hidden)
            query = q_proj(hidden).view(rows, 1, -1, head_dim).transpose(1, 2)
            key = k_proj(hidden).view(rows, 1, -1, head_dim).transpose(1, 2)
            value = v_proj(hidden).view(rows, 1, -1, head_dim).transpose(1, 2)
            if kernelized:
                query, key = rotary(query, key, cos, sin)
            else:
                query, key = _rotate(query, key, cos4, signed_sin4, half)
            keys, values = cache.layers[index].update(key, value)
            # transformers' sdpa_attention_forward for one query: with a mask, the query's heads are packed
            # per key/value head (pack_gqa); without one, sdpa's own grouped-query path (enable_gqa)
            if groups > 1 and sdpa_mask is None:
                out = _sdpa(query, keys, values, attn_mask=None, dropout_p=0.0, scale=scale, enable_gqa=True)
            else:
                if groups > 1:
                    query = query.reshape(rows, query.shape[1] // groups, groups, head_dim)
                out = _sdpa(query, keys, values, attn_mask=sdpa_mask, dropout_p=0.0, scale=scale)
            out = out.reshape(out.shape[0], -1, 1, values.shape[-1]).transpose(1, 2).contiguous()
            hidden = residual + o_proj(out.reshape(rows, 1, -1).contiguous())
            residual = hidden
            hidden = residual + mlp(norm2(hidden))
        hidden = self.norm(hidden)
        return self.lm_head(hidden[:, -1:, :])[:, -1, :]


def _rotary_tables(model: Any, positions: int) -> tuple[Tensor, Tensor, Tensor]:
    """cos, sin [positions, D] of the model's rotary embedding, and sin with its first half negated (_rotate)."""
    body = model.model
    parameter = next(model.parameters())
    probe = torch.zeros(1, 1, 1, dtype=parameter.dtype, device=parameter.device)
    cos, sin = body.rotary_emb(probe, torch.arange(positions, device=parameter.device)[None])
    half = cos.shape[-1] // 2
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return cos[0], sin[0], signed_sin[0]


def lean_step(model: Any, token: Tensor, position: Tensor, mask: Tensor | None, cache: Any) -> Tensor:
    """Next-token logits [B, V] for one token per row, appending its keys and values to ``cache``.

    ``token`` [B] and ``position`` [B, 1] (the rows' position ids); ``mask``: None when no row has padding
    (then every key is attended to, as transformers skips the mask), else the bool padding mask [B, S + 1]
    over the cached positions and this one. ``cache``: a cache whose layers are
    ``kv_cache.ReservedLayer`` s (``kv_cache.reserve``). A decoding loop builds :class:`LeanStep` once.
    """
    return LeanStep(model)(token, position, mask, cache)


_sdpa = torch.nn.functional.scaled_dot_product_attention


def _rotate(query: Tensor, key: Tensor, cos: Tensor, signed_sin: Tensor, half: int) -> tuple[Tensor, Tensor]:
    """transformers' ``apply_rotary_pos_emb`` — x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁) —
    on the queries and keys together, with the same float operations per element: rotate_half(x)·sin is
    x.roll(half)·(−sin₁, sin₂), since (−a)·b = a·(−b) exactly in IEEE arithmetic. Five kernels per layer
    instead of fourteen."""
    heads = query.shape[1]
    both = torch.cat((query, key), dim=1)
    both = both * cos + both.roll(half, dims=-1) * signed_sin
    return both[:, :heads], both[:, heads:]


def _linear(module: Any) -> Callable[[Tensor], Tensor]:
    """``F.linear`` on a plain ``nn.Linear``'s weight and bias (its forward, without the module call), or the
    module itself when it is anything else (a LoRA layer) or has hooks."""
    if type(module) is not torch.nn.Linear or _hooked(module):
        return module
    weight, bias = module.weight, module.bias
    return lambda x: torch.nn.functional.linear(x, weight, bias)


# RMSNorm classes whose forward is float32 x·rsqrt(mean(x²) + ε)·w: torch.nn.functional.rms_norm computes the
# same operations in one call (the same bits: tests/generation/test_lean_step.py compares the logits with
# torch.equal); read in transformers' modeling_llama.py and modeling_qwen2.py, 5.x
RMS_NORMS = ("LlamaRMSNorm", "Qwen2RMSNorm")


def _norm(module: Any) -> Callable[[Tensor], Tensor]:
    """``F.rms_norm`` with the module's weight and ε for a plain transformers RMSNorm on float32 inputs (one
    call instead of seven), the module itself otherwise (hooks, another class, a replaced forward, bf16)."""
    plain = type(module).__name__ in RMS_NORMS and "forward" not in vars(module) and not _hooked(module)
    weight, eps = getattr(module, "weight", None), getattr(module, "variance_epsilon", None)
    if not plain or weight is None or eps is None or weight.dtype != torch.float32:
        return module
    shape = (weight.shape[0],)

    def norm(x: Tensor) -> Tensor:
        if x.dtype != torch.float32:
            return module(x)
        return torch.nn.functional.rms_norm(x, shape, weight, eps)

    return norm


def _mlp(module: Any) -> Callable[[Tensor], Tensor]:
    """down(silu(gate(x)) · up(x)) with ``F.linear`` and ``F.silu`` for transformers' Llama/Qwen2 MLP with a SiLU
    activation (its forward, without four module calls), the module itself otherwise."""
    act = getattr(module, "act_fn", None)
    plain = (
        type(module).__name__ in ("LlamaMLP", "Qwen2MLP")
        and "forward" not in vars(module)
        and not _hooked(module)
        and type(act).__name__ in ("SiLUActivation", "SiLU")
        and not _hooked(act)
    )
    if not plain:
        return module
    gate, up, down = _linear(module.gate_proj), _linear(module.up_proj), _linear(module.down_proj)
    silu = torch.nn.functional.silu
    return lambda x: down(silu(gate(x)) * up(x))


def _hooked(module: Any) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or _global_hooks())


def _global_hooks() -> bool:
    from torch.nn.modules import module as torch_module

    return bool(torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks)


def _is_kernelized(function: Any) -> bool:
    """Whether hub kernels' ``kernelize`` gave this rotary wrapper a forward of its own."""
    return "forward" in vars(function) if hasattr(function, "__dict__") else False


def cache_is_reserved(cache: Any) -> bool:
    """Whether every layer of ``cache`` is a ``ReservedLayer`` (what :func:`lean_step` writes into)."""
    reserved = getattr(kv_cache, "ReservedLayer", None)  # absent with transformers < 4.56
    layers = getattr(cache, "layers", None)
    return reserved is not None and bool(layers) and all(isinstance(layer, reserved) for layer in layers)
