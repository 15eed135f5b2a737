"""The batch modifiers: transformations of the batch an objective receives or of its per-example loss.

Registered in the order the chain applies them (see ``modifiers.py``): ``wpo_weight`` and ``sft_aux``
first (they read the untransformed scores), then ``ld_alpha``, ``length_norm``, ``reference_free`` and
``label_smoothing`` (which appends every pair flipped, so it comes last). The loop modifiers (tr_dpo,
salsa_soup_ref, hft_freeze, bvpo_mix) are in ``loop_modifiers.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from alignlab.objectives.modifiers import Carry, Modifier, register
from alignlab.objectives.views import ListBatch, PairBatch, PointBatch
from alignlab.scoring.scores import Scores

Batch = PairBatch | ListBatch | PointBatch


# ------------------------------------------------------------------------------------- batch transforms
def map_scores(batch: Batch, fn: Any) -> Batch:
    """Apply ``fn(Scores) -> Scores`` to every Scores of a batch (chosen/rejected, items)."""
    if isinstance(batch, PairBatch):
        return dataclasses.replace(batch, chosen=fn(batch.chosen), rejected=fn(batch.rejected))
    return dataclasses.replace(batch, items=fn(batch.items))


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
    margin = None if batch.margin is None else torch.cat([batch.margin, -batch.margin])
    aux = {k: v.map(lambda t: torch.cat([t, t], 0)) for k, v in batch.aux.items()}
    aux_mask = {k: torch.cat([v, v], 0) for k, v in batch.aux_mask.items()}
    return PairBatch(
        chosen=cat(chosen, rejected),
        rejected=cat(rejected, chosen),
        weight=torch.cat([(1 - epsilon) * batch.weight, epsilon * batch.weight]),
        margin=margin,
        rating_names=batch.rating_names,
        aux=aux,
        aux_mask=aux_mask,
        group_index=None if batch.group_index is None else batch.group_index.repeat(2),
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
    if scores.token_logps is None or scores.token_mask is None or scores.token_log_sq_mass is None:
        raise ValueError(
            "modifier 'wpo_weight' needs per-token log-probs and Scores.token_log_sq_mass "
            "(log Σ_v π(v)² = logsumexp(2z) - 2·logsumexp(z) per completion token) from the engine"
        )
    mask = scores.token_mask.to(scores.token_logps.dtype)
    aligned = (scores.token_logps - scores.token_log_sq_mass) * mask
    return torch.exp(aligned.sum(-1) / mask.sum(-1).clamp(min=1)).detach()


# ----------------------------------------------------------------------------------------- the modifiers
class WpoWeight(Modifier):
    name, defaults, main = "wpo_weight", {"clamp": False}, "clamp"
    needs = frozenset({"token_logps", "token_log_sq_mass"})
    summary = "WPO: loss × w(y_w)·w(y_l), w = exp(mean_t[log π(y_t) - log Σ_v π(v)²]) (detached)"

    def before(self, batch: Batch, params: dict[str, Any], carry: Carry) -> Batch:
        if not isinstance(batch, PairBatch):
            raise ValueError("modifier 'wpo_weight' applies to pair losses only")
        weight = wpo_sequence_weight(batch.chosen) * wpo_sequence_weight(batch.rejected)
        if params.get("clamp"):
            weight = weight.clamp(max=1.0)  # TRL-old clamps the product at 1; TRL-new does not
        carry[self.name] = weight
        return batch

    def after(
        self, batch: Batch, loss: Tensor, params: dict[str, Any], carry: Carry
    ) -> tuple[Tensor, dict[str, Tensor]]:
        weight = carry[self.name]
        return loss * weight, {"wpo_weight": weight}


class SftAux(Modifier):
    name, defaults, main = "sft_aux", {"alpha": 1.0}, "alpha"
    summary = "RPO: loss + α·NLL(y_w) (token mean)"

    def before(self, batch: Batch, params: dict[str, Any], carry: Carry) -> Batch:
        carry[self.name] = sft_target_nll(batch)  # the target before any transform
        return batch

    def after(
        self, batch: Batch, loss: Tensor, params: dict[str, Any], carry: Carry
    ) -> tuple[Tensor, dict[str, Tensor]]:
        nll = carry[self.name]
        if nll.shape != loss.shape:
            raise ValueError(
                f"modifier 'sft_aux': the loss has shape {tuple(loss.shape)}, the NLL {tuple(nll.shape)}"
            )
        return loss + float(params["alpha"]) * nll, {"nll_loss": nll}


class LdAlpha(Modifier):
    name, defaults, main = "ld_alpha", {"alpha": 1.0}, "alpha"
    needs = frozenset({"token_logps", "reference"})
    summary = "LD-DPO: log π = Σ over the first min(|y_w|,|y_l|) tokens + α·Σ over the rest (pairs)"

    def validate(self, params: dict[str, Any]) -> None:
        if not 0.0 <= float(params["alpha"]) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {params['alpha']}")

    def before(self, batch: Batch, params: dict[str, Any], carry: Carry) -> Batch:
        return apply_ld_alpha(batch, float(params["alpha"]))


class LengthNorm(Modifier):
    name, defaults, main = "length_norm", {"enabled": True}, "enabled"
    summary = "replace summed log-probs (policy and reference) by per-token means"

    def before(self, batch: Batch, params: dict[str, Any], carry: Carry) -> Batch:
        return map_scores(batch, length_normalise)


class ReferenceFree(Modifier):
    name, defaults, main = "reference_free", {"enabled": True}, "enabled"
    drops_needs = frozenset({"reference"})  # log π_ref ≡ 0: no reference model is loaded at all
    summary = "log π_ref ≡ 0 (implicit reference of probability 1)"

    def before(self, batch: Batch, params: dict[str, Any], carry: Carry) -> Batch:
        return map_scores(batch, drop_reference)


class LabelSmoothing(Modifier):
    name, defaults, main = "label_smoothing", {"epsilon": 0.1}, "epsilon"
    summary = "(1-ε)·ℓ(y_w ≻ y_l) + ε·ℓ(y_l ≻ y_w) for any pair loss"

    def validate(self, params: dict[str, Any]) -> None:
        if not 0.0 <= float(params["epsilon"]) < 0.5:
            raise ValueError(f"epsilon must be in [0, 0.5), got {params['epsilon']}")

    def before(self, batch: Batch, params: dict[str, Any], carry: Carry) -> Batch:
        smoothed = smooth_labels(batch, float(params["epsilon"]))
        # A flipped pair keeps its original targets (sft_aux still imitates the original chosen answer).
        for key, value in carry.items():
            carry[key] = torch.cat([value, value], 0)
        return smoothed


for _modifier in (WpoWeight(), SftAux(), LdAlpha(), LengthNorm(), ReferenceFree(), LabelSmoothing()):
    register(_modifier)
