"""The loop modifiers: what a method needs the training loop to do, as modifiers with callbacks.

- ``tr_dpo`` (TR-DPO): after every ``sync_steps`` optimiser steps the reference moves towards the policy;
- ``salsa_soup_ref`` (SALSA): the reference is the weight average of several models;
- ``hft_freeze`` (Half Fine-Tuning): a seeded random half of each layer's parameter tensors is frozen;
- ``bvpo_mix`` (BVPO): records are reweighted so the loss mixes trace and empty-trace pairs.

Each is a :class:`~alignlab.objectives.modifiers.Modifier` whose ``callback`` gives the
:class:`~alignlab.objectives.callbacks.Callback` the loop calls; the updates themselves are the pure
functions below, tested on their own.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from alignlab.objectives.callbacks import Callback, DataContext
from alignlab.objectives.modifiers import Modifier, register


# ------------------------------------------------------------------------------------------ pure updates
@torch.no_grad()
def tr_dpo_update(
    reference: Mapping[str, Tensor], policy: Mapping[str, Tensor], alpha: float, mode: str = "soft"
) -> None:
    """TR-DPO reference update, in place: soft θ_ref ← α·θ + (1-α)·θ_ref; hard θ_ref ← θ.

    Checked: huggingface/trl trl/trainer/callbacks.py SyncRefModelCallback.sync_target_model
    (``target.mul_(1 - alpha).add_(model, alpha=alpha)``) and dpo_config.py (ref_model_mixup_alpha 0.6,
    ref_model_sync_steps 512; paper Gorbatovski et al. 2024, arXiv 2404.09656).
    """
    if mode not in ("soft", "hard"):
        raise ValueError(f"tr_dpo: mode must be 'soft' or 'hard', got {mode!r}")
    missing = sorted(set(reference) ^ set(policy))
    if missing:
        raise ValueError(f"tr_dpo: reference and policy parameters differ: {missing[:5]}")
    a = 1.0 if mode == "hard" else float(alpha)
    for name, ref in reference.items():
        ref.mul_(1 - a).add_(policy[name].to(ref.dtype), alpha=a)


def tr_dpo_due(step: int, sync_steps: int) -> bool:
    """Whether the reference is synced after optimiser step ``step`` (1-based): every ``sync_steps`` steps."""
    return step > 0 and step % sync_steps == 0


def soup_reference(
    state_dicts: list[Mapping[str, Tensor]], weights: list[float] | None = None
) -> dict[str, Tensor]:
    """SALSA reference θ_ref = Σ_i w_i θ_i (equal weights by default: ½(θ_1 + θ_2) in the paper).

    Chegini et al. 2024, arXiv 2411.01798 (paper recall; equal weights unverified).
    """
    if not state_dicts:
        raise ValueError("salsa_soup_ref: give at least one model (paths)")
    w = [1.0 / len(state_dicts)] * len(state_dicts) if not weights else [float(x) for x in weights]
    if len(w) != len(state_dicts):
        raise ValueError(f"salsa_soup_ref: {len(w)} weights for {len(state_dicts)} models")
    keys = set(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], 1):
        if set(sd) != keys:
            raise ValueError(f"salsa_soup_ref: model {i} has different parameter names than model 0")
    return {
        k: sum(wi * sd[k].double() for wi, sd in zip(w, state_dicts, strict=True)).to(state_dicts[0][k].dtype)
        for k in keys
    }


_LAYER = re.compile(r"\.(\d+)\.")


def hft_freeze_mask(param_names: list[str], seed: int = 0, fraction: float = 0.5) -> dict[str, bool]:
    """Half Fine-Tuning: {name: frozen?}. Within each numbered layer (``...layers.3...``) a seeded random
    ``fraction`` of its parameter tensors (rounded down) is frozen; parameters outside layers
    (embeddings, final norm, head) stay trainable. Hui et al. 2024, arXiv 2404.18466 (paper recall:
    per-layer random half of the parameter matrices; unverified in code).
    """
    groups: dict[str, list[str]] = {}
    for name in param_names:
        match = _LAYER.search(name)
        if match:
            groups.setdefault(name[: match.end()], []).append(name)
    rng = random.Random(seed)
    frozen: set[str] = set()
    for key in sorted(groups):
        members = sorted(groups[key])
        frozen.update(rng.sample(members, int(len(members) * fraction)))
    return {name: name in frozen for name in param_names}


def apply_hft_freeze(model: torch.nn.Module, seed: int = 0, fraction: float = 0.5) -> dict[str, bool]:
    """Set ``requires_grad=False`` on the parameters :func:`hft_freeze_mask` selects; returns the mask."""
    mask = hft_freeze_mask([n for n, _ in model.named_parameters()], seed, fraction)
    for name, param in model.named_parameters():
        if mask[name]:
            param.requires_grad_(False)
    return mask


def bvpo_mix_losses(loss_trace: Tensor, loss_empty: Tensor, alpha: float) -> Tensor:
    """BVPO: α·L(with trace) + (1-α)·L(empty trace); the gradient mixes the same way."""
    return alpha * loss_trace + (1 - alpha) * loss_empty


def bvpo_record_weights(is_empty_trace: list[bool], alpha: float) -> list[float]:
    """Record weights that make the loop's weighted mean the BVPO mixture.

    BVPO (arXiv 2510.05095) mixes a trace-based gradient estimator with an empty-trace one:
    g = α·g_trace + (1-α)·g_empty. With N records, N_t with traces and N_e = N - N_t without, weights
    α·N/N_t (trace) and (1-α)·N/N_e (empty) make the weighted mean over all records
    Σ w·ℓ / Σ w = α·mean_trace ℓ + (1-α)·mean_empty ℓ exactly (Σ w = N); over a random mini-batch it is the
    ratio estimate of the same mixture. Unverified (abstract only, no official code found).
    """
    n, n_empty = len(is_empty_trace), sum(is_empty_trace)
    n_trace = n - n_empty
    if n_trace == 0 and alpha > 0:
        raise ValueError(
            f"bvpo_mix: alpha={alpha} needs pairs with reasoning traces, but every record is empty-trace"
        )
    if n_empty == 0 and alpha < 1:
        raise ValueError(
            f"bvpo_mix: alpha={alpha} needs empty-trace pairs, but no record is marked as one; mark them "
            "with meta.role (the modifier's 'role' parameter, default 'no_trace'), or set alpha: 1"
        )
    trace = alpha * n / n_trace if n_trace else 0.0
    empty = (1 - alpha) * n / n_empty if n_empty else 0.0
    return [empty if e else trace for e in is_empty_trace]


def bvpo_optimal_alpha(var_trace: float, var_empty: float, bias_sq: float, covariance: float = 0.0) -> float:
    """MSE-optimal α for g = α·g_trace + (1-α)·g_empty with g_trace unbiased (variance σ_t²) and g_empty
    biased (squared bias b², variance σ_e²): α* = (σ_e² + b² - c) / (σ_t² + σ_e² + b² - 2c), clipped to
    [0, 1]. Derived from the MSE of the mixture (the paper's closed form is from its abstract; unverified).
    """
    denominator = var_trace + var_empty + bias_sq - 2 * covariance
    if denominator <= 0:
        return 1.0
    return float(min(1.0, max(0.0, (var_empty + bias_sq - covariance) / denominator)))


# ----------------------------------------------------------------------------------------- the modifiers
class TrDpoSync(Callback):
    name, moves_reference, needs_separate_reference = "tr_dpo", True, True

    def __init__(self, params: dict[str, Any]):
        self.alpha, self.sync_steps, self.mode = (
            float(params["alpha"]),
            int(params["sync_steps"]),
            params["mode"],
        )

    def on_step_end(self, step: int, policy: nn.Module, reference: nn.Module | None) -> None:
        if reference is not None and tr_dpo_due(step, self.sync_steps):
            tr_dpo_update(
                dict(reference.named_parameters()), dict(policy.named_parameters()), self.alpha, self.mode
            )


class TrDpo(Modifier):
    name, defaults, main = "tr_dpo", {"alpha": 0.6, "sync_steps": 512, "mode": "soft"}, "alpha"
    summary = "TR-DPO: every τ steps θ_ref ← α·θ + (1-α)·θ_ref (soft) or θ_ref ← θ (hard)"

    def validate(self, params: dict[str, Any]) -> None:
        if not 0.0 <= float(params["alpha"]) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {params['alpha']}")
        if int(params["sync_steps"]) < 1:
            raise ValueError(f"sync_steps must be >= 1, got {params['sync_steps']}")
        if params["mode"] not in ("soft", "hard"):
            raise ValueError(f"mode must be 'soft' or 'hard', got {params['mode']!r}")

    def callback(self, params: dict[str, Any]) -> Callback:
        return TrDpoSync(params)


class SoupReference(Callback):
    name = "salsa_soup_ref"

    def __init__(self, params: dict[str, Any]):
        self.paths, self.weights = list(params["paths"]), list(params.get("weights") or [])

    def build_reference(self, load: Callable[[str], nn.Module]) -> nn.Module:
        models = [load(path) for path in self.paths]
        if not models:
            raise ValueError("salsa_soup_ref: give at least one model (paths)")
        models[0].load_state_dict(soup_reference([m.state_dict() for m in models], self.weights or None))
        return models[0]


class SalsaSoupRef(Modifier):
    name, defaults, main = "salsa_soup_ref", {"paths": [], "weights": []}, "paths"
    summary = "SALSA: reference = weight average of several SFT models"

    def callback(self, params: dict[str, Any]) -> Callback:
        return SoupReference(params)


class FreezeHalf(Callback):
    name = "hft_freeze"

    def __init__(self, params: dict[str, Any]):
        self.seed, self.fraction = int(params["seed"]), float(params["fraction"])

    def on_policy(self, policy: nn.Module) -> list[str]:
        mask = apply_hft_freeze(policy, self.seed, self.fraction)
        return [f"hft_freeze: {sum(mask.values())} of {len(mask)} parameter tensors frozen"]


class HftFreeze(Modifier):
    name, defaults, main = "hft_freeze", {"fraction": 0.5, "seed": 0}, "seed"
    summary = "Half Fine-Tuning: freeze a seeded random half of each layer's parameter tensors"

    def validate(self, params: dict[str, Any]) -> None:
        if not 0.0 <= float(params["fraction"]) <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {params['fraction']}")

    def callback(self, params: dict[str, Any]) -> Callback:
        return FreezeHalf(params)


class MixTraces(Callback):
    name = "bvpo_mix"

    def __init__(self, params: dict[str, Any]):
        self.alpha, self.role = float(params["alpha"]), params["role"]

    def on_data(self, data: DataContext) -> list[str]:
        used, records = data.used, data.records
        empty = [records[i].meta.get("role") == self.role for i in used]
        weights = bvpo_record_weights(empty, self.alpha)
        for i, w in zip(used, weights):
            records[i].weight *= w
        return [
            f"bvpo_mix ({data.split}): {len(used) - sum(empty)} trace pairs, {sum(empty)} empty-trace pairs "
            f"(meta.role '{self.role}'), alpha {self.alpha}"
        ]


class BvpoMix(Modifier):
    name, defaults, main = "bvpo_mix", {"alpha": 0.5, "role": "no_trace"}, "alpha"
    summary = "BVPO: loss = α·loss(pairs with reasoning traces) + (1-α)·loss(empty-trace pairs, meta.role)"

    def validate(self, params: dict[str, Any]) -> None:
        if not 0.0 <= float(params["alpha"]) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {params['alpha']}")

    def callback(self, params: dict[str, Any]) -> Callback:
        return MixTraces(params)


for _modifier in (TrDpo(), SalsaSoupRef(), HftFreeze(), BvpoMix()):
    register(_modifier)
