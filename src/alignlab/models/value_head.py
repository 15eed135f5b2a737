"""A value head: the critic V(s_t) read off the policy's (or a separate body's) hidden states.

    head = ValueHead(model.config.hidden_size)
    values = head(hidden)            # hidden [..., H] -> values [...]

PPO needs V(s_t) at every completion position; the engine supplies the hidden states at those positions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ValueHead(nn.Module):
    """Linear map from a hidden state to a scalar value, computed in float32.

    Weights are drawn with std 1/(H+1) (OpenRLHF ``models/model.py``, its critic's ``value_head``), the
    bias is 0, so the first values are near zero and early advantages close to the reward-to-go. ``dropout``
    applies to the hidden state during training (TRL's ``summary_dropout_prob``; 0 by default)."""

    def __init__(self, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear = nn.Linear(hidden_size, 1, dtype=torch.float32)
        nn.init.normal_(self.linear.weight, std=1.0 / (hidden_size + 1))
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(self.dropout(hidden.float())).squeeze(-1)
