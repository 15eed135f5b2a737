"""The modifier catalog: transformations that apply across losses (METHODS.md "Modifiers").

A modifier acts at one of three places:

- ``before``: on the batch an objective receives (length_norm, ld_alpha, reference_free,
  label_smoothing, and the weight/NLL targets that wpo_weight and sft_aux read later);
- ``after``: on the per-example loss (sft_aux adds α·NLL(y_w); wpo_weight multiplies by w(y_w)·w(y_l));
- ``loop``: on the reference model, the optimiser or the scoring (tr_dpo, salsa_soup_ref, hft_freeze,
  bvpo_mix). For those this module gives the pure update functions; the training loop calls them
  (see :data:`LOOP_HOOKS`).

Config form: ``modifiers: {length_norm: true, sft_aux: 1.0, tr_dpo: {alpha: 0.6, sync_steps: 512}}``.
A scalar value sets the modifier's main parameter, ``true`` takes its defaults, ``false``/``null`` drops it.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.views import ListBatch, PairBatch, PointBatch
from alignlab.scoring.scores import Scores

Batch = PairBatch | ListBatch | PointBatch
SFT_NLL = "sft_aux_nll"  # Scores.extra key: token-mean NLL of the SFT target, taken before any transform
WPO_WEIGHT = "wpo_weight"  # Scores.extra key: detached WPO sequence weight
LOG_SQ_MASS = "token_log_sq_mass"  # Scores.extra key the engine fills for wpo: log Σ_v π(v|·)² per token


@dataclass(frozen=True)
class ModifierDef:
    name: str
    stage: str  # "before", "after" or "loop"
    defaults: dict[str, Any]
    main: str | None  # the parameter a scalar value sets
    needs: frozenset[str] = frozenset()
    summary: str = ""
    hook: str = ""  # for loop modifiers: the training-loop hook that applies it
    extra: dict[str, Any] = field(default_factory=dict)


CATALOG: dict[str, ModifierDef] = {
    d.name: d
    for d in (
        ModifierDef(
            "ld_alpha",
            "before",
            {"alpha": 1.0},
            "alpha",
            frozenset({"token_logps", "reference"}),
            "LD-DPO: log π = Σ over the first min(|y_w|,|y_l|) tokens + α·Σ over the rest (pairs)",
        ),
        ModifierDef(
            "length_norm",
            "before",
            {"enabled": True},
            "enabled",
            frozenset(),
            "replace summed log-probs (policy and reference) by per-token means",
        ),
        ModifierDef(
            "reference_free",
            "before",
            {"enabled": True},
            "enabled",
            frozenset(),
            "log π_ref ≡ 0 (implicit reference of probability 1)",
        ),
        ModifierDef(
            "label_smoothing",
            "before",
            {"epsilon": 0.1},
            "epsilon",
            frozenset(),
            "(1-ε)·ℓ(y_w ≻ y_l) + ε·ℓ(y_l ≻ y_w) for any pair loss",
        ),
        ModifierDef(
            "wpo_weight",
            "after",
            {"clamp": False},
            "clamp",
            frozenset({"token_logps", "token_sq_mass"}),
            "WPO: loss × w(y_w)·w(y_l), w = exp(mean_t[log π(y_t) - log Σ_v π(v)²]) (detached)",
        ),
        ModifierDef(
            "sft_aux", "after", {"alpha": 1.0}, "alpha", frozenset(), "RPO: loss + α·NLL(y_w) (token mean)"
        ),
        ModifierDef(
            "tr_dpo",
            "loop",
            {"alpha": 0.6, "sync_steps": 512, "mode": "soft"},
            "alpha",
            frozenset(),
            "TR-DPO: every τ steps θ_ref ← α·θ + (1-α)·θ_ref (soft) or θ_ref ← θ (hard)",
            hook="on_step_end(step, policy, reference)",
        ),
        ModifierDef(
            "salsa_soup_ref",
            "loop",
            {"paths": [], "weights": []},
            "paths",
            frozenset(),
            "SALSA: reference = weight average of several SFT models",
            hook="on_reference_load(state_dicts) -> state_dict",
        ),
        ModifierDef(
            "hft_freeze",
            "loop",
            {"fraction": 0.5, "seed": 0},
            "seed",
            frozenset(),
            "Half Fine-Tuning: freeze a seeded random half of each layer's parameter tensors",
            hook="on_train_start(policy)",
        ),
        ModifierDef(
            "bvpo_mix",
            "loop",
            {"alpha": 0.5, "role": "no_trace"},
            "alpha",
            frozenset(),
            "BVPO: loss = α·loss(pairs with reasoning traces) + (1-α)·loss(empty-trace pairs, meta.role)",
            hook="on_data_loaded(records) -> record weights",
        ),
    )
}
ORDER = ("ld_alpha", "length_norm", "reference_free", "label_smoothing")
LOOP_HOOKS = {name: d.hook for name, d in CATALOG.items() if d.stage == "loop"}


# ------------------------------------------------------------------------------------------ config values
def normalise(name: str, value: Any, where: str = "") -> dict[str, Any] | None:
    """The full parameter dict of modifier ``name`` from its config value (None = modifier off)."""
    spec = CATALOG[name]
    if value is None or value is False:
        return None
    params = dict(spec.defaults)
    if value is True:
        return params
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(spec.defaults))
        if unknown:
            raise ValueError(
                f"{where}modifier '{name}' has no parameter(s) {unknown} (allowed: {sorted(spec.defaults)})"
            )
        params.update(value)
    elif spec.main is not None:
        params[spec.main] = value
    else:
        raise ValueError(f"{where}modifier '{name}' takes true/false or a mapping, got {value!r}")
    _validate(name, params, where)
    return params


def _validate(name: str, p: dict[str, Any], where: str) -> None:
    def bad(msg: str) -> ValueError:
        return ValueError(f"{where}modifier '{name}': {msg}")

    if name == "ld_alpha" and not 0.0 <= float(p["alpha"]) <= 1.0:
        raise bad(f"alpha must be in [0, 1], got {p['alpha']}")
    if name == "label_smoothing" and not 0.0 <= float(p["epsilon"]) < 0.5:
        raise bad(f"epsilon must be in [0, 0.5), got {p['epsilon']}")
    if name == "tr_dpo":
        if not 0.0 <= float(p["alpha"]) <= 1.0:
            raise bad(f"alpha must be in [0, 1], got {p['alpha']}")
        if int(p["sync_steps"]) < 1:
            raise bad(f"sync_steps must be >= 1, got {p['sync_steps']}")
        if p["mode"] not in ("soft", "hard"):
            raise bad(f"mode must be 'soft' or 'hard', got {p['mode']!r}")
    if name == "hft_freeze" and not 0.0 <= float(p["fraction"]) <= 1.0:
        raise bad(f"fraction must be in [0, 1], got {p['fraction']}")
    if name == "bvpo_mix" and not 0.0 <= float(p["alpha"]) <= 1.0:
        raise bad(f"alpha must be in [0, 1], got {p['alpha']}")


# ------------------------------------------------------------------------------------- batch transforms
def map_scores(batch: Batch, fn: Any) -> Batch:
    """Apply ``fn(Scores) -> Scores`` to every Scores of a batch (chosen/rejected, items)."""
    if isinstance(batch, PairBatch):
        return dataclasses.replace(batch, chosen=fn(batch.chosen), rejected=fn(batch.rejected))
    return dataclasses.replace(batch, items=fn(batch.items))


def with_extra(scores: Scores, **values: Tensor) -> Scores:
    return scores.with_(extra={**scores.extra, **values})


def length_normalise(scores: Scores) -> Scores:
    """Summed → per-token mean log-probs (policy and reference); lengths become 1 so means are not re-taken."""
    lengths = scores.lengths.clamp(min=1)
    ref = None if scores.ref_logps is None else scores.ref_logps / lengths
    return scores.with_(logps=scores.logps / lengths, ref_logps=ref, lengths=torch.ones_like(scores.lengths))


def drop_reference(scores: Scores) -> Scores:
    ref_tokens = None if scores.token_logps is None else torch.zeros_like(scores.token_logps)
    return scores.with_(ref_logps=torch.zeros_like(scores.logps), ref_token_logps=ref_tokens)


def ld_logps(token_logps: Tensor, token_mask: Tensor, shared_lengths: Tensor, alpha: float) -> Tensor:
    """LD-DPO sequence log-prob: Σ_{t ≤ shared} log p_t + α·Σ_{t > shared} log p_t over completion tokens."""
    mask = token_mask.to(token_logps.dtype)
    position = mask.cumsum(dim=-1)
    shared = (position <= shared_lengths.unsqueeze(-1)) * mask
    tail = (position > shared_lengths.unsqueeze(-1)) * mask
    return (token_logps * shared).sum(-1) + alpha * (token_logps * tail).sum(-1)


def apply_ld_alpha(batch: Batch, alpha: float) -> Batch:
    if not isinstance(batch, PairBatch):
        raise ValueError("modifier 'ld_alpha' applies to pair losses only (it compares |y_w| and |y_l|)")
    c, r = batch.chosen, batch.rejected
    for s in (c, r):
        if s.token_logps is None or s.token_mask is None or s.ref_token_logps is None:
            raise ValueError(
                "modifier 'ld_alpha' needs per-token policy and reference log-probs from the engine"
            )
    shared = torch.minimum(c.token_mask.sum(-1), r.token_mask.sum(-1)).to(c.token_logps.dtype)

    def rescore(s: Scores) -> Scores:
        return s.with_(
            logps=ld_logps(s.token_logps, s.token_mask, shared, alpha),
            ref_logps=ld_logps(s.ref_token_logps, s.token_mask, shared, alpha),
        )

    return dataclasses.replace(batch, chosen=rescore(c), rejected=rescore(r))


def smooth_labels(batch: Batch, epsilon: float) -> Batch:
    """Append every pair flipped, with weights (1-ε)·w and ε·w: the weighted batch mean is then
    Σ w[(1-ε)ℓ(h) + εℓ(-h)] / Σ w, label smoothing for any pair loss. Per-pair metrics then cover both."""
    if not isinstance(batch, PairBatch):
        raise ValueError("modifier 'label_smoothing' applies to pair losses only")

    def cat(a: Scores, b: Scores) -> Scores:
        def join(x: Any, y: Any) -> Any:
            return torch.cat([x, y], dim=0) if isinstance(x, Tensor) and isinstance(y, Tensor) else x

        values = {
            f.name: join(getattr(a, f.name), getattr(b, f.name))
            for f in dataclasses.fields(a)
            if f.name != "extra"
        }
        extra = {k: torch.cat([a.extra[k], b.extra[k]], 0) for k in a.extra if k in b.extra}
        return Scores(**values, extra=extra)

    chosen, rejected = batch.chosen, batch.rejected
    # The SFT target of a flipped pair is still the original chosen answer.
    flipped_chosen = with_extra(
        rejected, **{k: chosen.extra[k] for k in (SFT_NLL, WPO_WEIGHT) if k in chosen.extra}
    )
    margin = None if batch.margin is None else torch.cat([batch.margin, -batch.margin])
    aux = {k: v.map(lambda t: torch.cat([t, t], 0)) for k, v in batch.aux.items()}
    aux_mask = {k: torch.cat([v, v], 0) for k, v in batch.aux_mask.items()}
    return PairBatch(
        chosen=cat(chosen, flipped_chosen),
        rejected=cat(rejected, chosen),
        weight=torch.cat([(1 - epsilon) * batch.weight, epsilon * batch.weight]),
        margin=margin,
        rating_names=batch.rating_names,
        aux=aux,
        aux_mask=aux_mask,
    )


def sft_target_nll(batch: Batch) -> Tensor:
    """Token-mean NLL of the answer to imitate: y_w of a pair, the best item of a list, good rows of labels."""
    if isinstance(batch, PairBatch):
        return -batch.chosen.mean_logps
    if isinstance(batch, ListBatch):
        ranks = torch.where(batch.mask, batch.ranks, torch.full_like(batch.ranks, float("inf")))
        best = ranks.argmin(dim=1)
        return -batch.items.mean_logps[torch.arange(best.shape[0]), best]
    nll = -batch.items.mean_logps
    return nll if batch.labels is None else nll * (batch.labels > 0.5).to(nll.dtype)


def wpo_sequence_weight(scores: Scores) -> Tensor:
    """w(y) = exp( (1/|y|) Σ_t [log π(y_t) - log Σ_v π(v|·)²] ), detached (WPO Eq. 2)."""
    if scores.token_logps is None or scores.token_mask is None or LOG_SQ_MASS not in scores.extra:
        raise ValueError(
            "modifier 'wpo_weight' needs per-token log-probs and Scores.extra['token_log_sq_mass'] "
            "(log Σ_v π(v)² = logsumexp(2z) - 2·logsumexp(z) per completion token) from the engine"
        )
    mask = scores.token_mask.to(scores.token_logps.dtype)
    aligned = (scores.token_logps - scores.extra[LOG_SQ_MASS]) * mask
    return torch.exp(aligned.sum(-1) / mask.sum(-1).clamp(min=1)).detach()


# ------------------------------------------------------------------------- loop modifiers: pure updates
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
