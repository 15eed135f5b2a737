"""How per-token losses become one number: its own setting, never implied by a loss's name.

One registry with ONE signature: ``aggregate(per_token_loss, mask, normalisers, *, hyper-parameters)``.
With l_{i,t} the per-token loss of sequence i, m_{i,t} its mask, n_i = Σ_t m_{i,t}:

- ``token_mean``:              Σ_{i,t} m·l / N_tokens                      (TRL ``dapo``/``bnpo``, verl ``token-mean``)
- ``seq_mean_token_mean``:     Σ_i (Σ_t m·l / n_i) / N_sequences           (TRL ``grpo``, the GRPO paper)
- ``seq_mean_token_sum``:      Σ_{i,t} m·l / N_sequences                   (verl ``seq-mean-token-sum``)
- ``seq_mean_token_sum_norm``: Σ_{i,t} m·l / (N_sequences · L_norm)        (TRL ``dr_grpo``, Dr. GRPO paper)

**Normalisers come from outside.** N_tokens and N_sequences are counts over the GLOBAL batch (every
micro-batch on every process), computed before the forward passes (:class:`LossNormalisers`), so each
micro-batch returns its share and the shares sum to the global loss: a step's loss and gradients do not
depend on how it is cut. ``normalisers=None`` means "this piece is the whole batch" (counts taken from
``mask``). Any object with ``tokens`` and ``sequences`` serves (:class:`Counts`), e.g. the loop's
``objectives.compose.Normalisers``. Under DDP, which averages gradients over P processes, the caller multiplies each process's
share by P (verl's ``dp_size``). A sequence with no real token counts in no sequence normaliser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from alignlab.objectives.rl_registry import Registry

AGGREGATIONS = Registry("loss aggregation", signature=("loss", "mask", "normalisers"))


class Counts(Protocol):
    """What an aggregation reads from its normalisers."""

    @property
    def tokens(self) -> float: ...

    @property
    def sequences(self) -> float: ...


@dataclass(frozen=True)
class LossNormalisers:
    """Counts over the global batch: real tokens, and sequences with at least one real token."""

    tokens: float
    sequences: float

    @classmethod
    def of(cls, mask: Tensor) -> LossNormalisers:
        """The counts of one piece ``mask [..., T]``; add the pieces (``+``) for the global batch."""
        return cls(tokens=float(mask.sum()), sequences=float((mask.sum(-1) > 0).sum()))

    def __add__(self, other: LossNormalisers) -> LossNormalisers:
        return LossNormalisers(self.tokens + other.tokens, self.sequences + other.sequences)


def _normalisers(mask: Tensor, given: Counts | None) -> Counts:
    return LossNormalisers.of(mask) if given is None else given


@AGGREGATIONS.register("token_mean", paper="Yu et al. 2025 (DAPO), arXiv 2503.14476 (token-level loss)")
def token_mean(loss: Tensor, mask: Tensor, normalisers: Counts | None) -> Tensor:
    """Σ_{i,t} m_{i,t}·l_{i,t} / N_tokens over the global batch. Every token weighs the same, so long
    sequences weigh more (DAPO §3.3). Checked: TRL 1.16 ``loss_type="dapo"`` (normaliser = tokens of the
    whole generation batch across processes) and ``"bnpo"`` (local tokens), verl ``agg_loss("token-mean")``."""
    n = _normalisers(mask, normalisers)
    return (loss * mask).sum() / max(n.tokens, 1.0)


@AGGREGATIONS.register("seq_mean_token_mean", paper="Shao et al. 2024 (DeepSeekMath), arXiv 2402.03300 eq. 3")
def seq_mean_token_mean(loss: Tensor, mask: Tensor, normalisers: Counts | None) -> Tensor:
    """(1/N_sequences)·Σ_i (1/n_i)·Σ_t m_{i,t}·l_{i,t}: the GRPO paper's per-sequence length normalisation.
    Checked: TRL 1.16 ``loss_type="grpo"`` (``((l·m).sum(-1)/m.sum(-1).clamp(min=1)).mean()``), verl
    ``agg_loss("seq-mean-token-mean")``."""
    n = _normalisers(mask, normalisers)
    per_sequence = (loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_sequence.sum() / max(n.sequences, 1.0)


@AGGREGATIONS.register("seq_mean_token_sum", paper="verl core_algos agg_loss('seq-mean-token-sum')")
def seq_mean_token_sum(loss: Tensor, mask: Tensor, normalisers: Counts | None) -> Tensor:
    """(1/N_sequences)·Σ_i Σ_t m_{i,t}·l_{i,t}: the sequence loss is the SUM over its tokens (the REINFORCE
    form −A·log π(y)). Checked: verl ``agg_loss("seq-mean-token-sum")``."""
    n = _normalisers(mask, normalisers)
    return (loss * mask).sum() / max(n.sequences, 1.0)


@AGGREGATIONS.register("seq_mean_token_sum_norm", paper="Liu et al. 2025 (Dr. GRPO), arXiv 2503.20783")
def seq_mean_token_sum_norm(
    loss: Tensor, mask: Tensor, normalisers: Counts | None, *, length_norm: int = 0
) -> Tensor:
    """Σ_{i,t} m_{i,t}·l_{i,t} / (N_sequences · L_norm) with a CONSTANT L_norm (the generation budget
    ``max_new_tokens``): every token of every sequence weighs the same whatever its length, removing GRPO's
    length bias (Dr. GRPO eq. 3). ``length_norm=0`` uses the padded width T of ``mask`` (verl's default;
    set it, since T varies per batch). Checked: TRL 1.16 ``loss_type="dr_grpo"``
    (``(l·m).sum()/(B·max_completion_length)``); verl divides by L_norm only, without N_sequences."""
    n = _normalisers(mask, normalisers)
    width = length_norm if length_norm > 0 else int(mask.shape[-1])
    return (loss * mask).sum() / (max(n.sequences, 1.0) * max(width, 1))
