"""Scores: what the engine computed for a set of completions, the only thing objectives read.

Every field is aligned on the leading dimensions (``[N]`` for a flat batch, ``[P]`` for pairs,
``[G, K]`` for lists); per-token fields add a trailing ``T`` dimension padded with zeros, with
``token_mask`` marking real completion tokens. Fields the objective did not ask for are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

from alignlab.scoring.token_statistics import TOKEN_STATISTICS, WITHOUT_GRADIENT

# What an objective may ask the engine for. "logps" and "lengths" are always computed; the per-token
# statistics are the table in token_statistics.py, each filling the Scores field of its name.
NEEDS = {
    "reference": "reference log-probs (summed; per token too when token_logps is needed)",
    **{name: stat.doc for name, stat in TOKEN_STATISTICS.items()},
    **{
        need: f"{stat} computed without gradients, for logging only (fills {stat}; an objective whose loss "
        f"contains it needs {stat})"
        for need, stat in WITHOUT_GRADIENT.items()
    },
    "hidden": "pooled hidden state of the last completion token",
    "rewards": "reward-head outputs (scalar or one per attribute) of a reward model",
    "prompt_logps": "summed log-probs of the prompt tokens (for SFT with prompt loss)",
    "token_hidden": "hidden states at the positions predicting each completion token, extra['token_hidden'] [.., T, H]",
    "token_values": "a value head's V(s_t) at each completion position, extra['token_values'] (online PPO)",
}

# Needs that run the reference model's LM head at every completion position, so they cannot be cached.
FULL_VOCAB_REFERENCE_NEEDS = frozenset(
    name for name, stat in TOKEN_STATISTICS.items() if stat.needs_reference
)


@dataclass
class Scores:
    logps: Tensor  # summed log pi(y|x) over completion tokens
    lengths: Tensor  # number of completion tokens (float)
    ref_logps: Tensor | None = None
    token_logps: Tensor | None = None
    token_mask: Tensor | None = None
    ref_token_logps: Tensor | None = None
    token_kl: Tensor | None = None
    token_kl_reverse: Tensor | None = None
    token_logps_ref_support: Tensor | None = None
    token_entropy: Tensor | None = None
    token_log_sq_mass: Tensor | None = None
    hidden: Tensor | None = None
    rewards: Tensor | None = None
    prompt_logps: Tensor | None = None
    prompt_lengths: Tensor | None = None
    # Feedback aligned with the completions (filled from the batch, not by the engine).
    ratings: Tensor | None = None  # [.., A] named ratings; names in Feedback.rating_names
    token_weights: Tensor | None = None  # [.., T] per-token span feedback (e.g. 1 on flagged tokens)
    extra: dict[str, Tensor] = field(default_factory=dict)  # Record.extras, one value per completion

    # ----------------------------------------------------------------- derived
    @property
    def mean_logps(self) -> Tensor:
        """Length-normalised log-prob: logps / |y|."""
        return self.logps / self.lengths.clamp(min=1)

    @property
    def logratios(self) -> Tensor:
        """rho(y) = log pi_theta(y|x) - log pi_ref(y|x); the reference counts as 0 when absent."""
        return self.logps if self.ref_logps is None else self.logps - self.ref_logps

    @property
    def token_logratios(self) -> Tensor:
        if self.token_logps is None:
            raise ValueError(
                "token_logps were not computed; the objective must declare needs={'token_logps'}"
            )
        if self.ref_token_logps is None:
            return self.token_logps
        return self.token_logps - self.ref_token_logps

    # ------------------------------------------------------------- reshaping
    def map(self, fn: Any) -> Scores:
        """Apply ``fn`` to every tensor field (and to ``extra``), keeping None as None."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: (fn(v) if isinstance(v, Tensor) else v) for k, v in values.items()}
        return Scores(**out, extra={k: fn(v) for k, v in self.extra.items()})

    def index(self, idx: Tensor) -> Scores:
        """Gather along the leading dimension: ``idx`` of any shape gives fields of that shape."""
        return self.map(lambda t: t[idx])

    def with_(self, **changes: Any) -> Scores:
        return replace(self, **changes)

    @classmethod
    def from_logps(
        cls,
        logps: Tensor,
        lengths: Tensor | None = None,
        ref_logps: Tensor | None = None,
        **rest: Any,
    ) -> Scores:
        """Scores from summed log-probs computed elsewhere (lengths default to 1: no normalisation)."""
        logps = torch.as_tensor(logps)
        lengths = torch.ones_like(logps) if lengths is None else torch.as_tensor(lengths, dtype=logps.dtype)
        if ref_logps is not None:
            ref_logps = torch.as_tensor(ref_logps, dtype=logps.dtype)
        return cls(logps=logps, lengths=lengths, ref_logps=ref_logps, **rest)
