"""Per-token sums and per-completion NLL over ``Scores``, shared by the token-level and prepare-hook objectives."""

from __future__ import annotations

from torch import Tensor

from alignlab.scoring.scores import Scores


def masked_sum(values: Tensor, mask: Tensor) -> Tensor:
    return (values * mask.to(values.dtype)).sum(-1)


def token_fields(scores: Scores, who: str) -> tuple[Tensor, Tensor]:
    """(token_logps, float mask) or a clear error naming the objective."""
    if scores.token_logps is None or scores.token_mask is None:
        raise ValueError(
            f"{who}: per-token log-probs are missing; the objective must declare needs 'token_logps'"
        )
    return scores.token_logps, scores.token_mask.to(scores.token_logps.dtype)


def nll(items: Scores, normalize: str, who: str) -> Tensor:
    """Per-completion NLL: token mean (``tokens``) or summed (``sum``)."""
    if normalize == "tokens":
        return -items.mean_logps
    if normalize == "sum":
        return -items.logps
    raise ValueError(f"{who}: normalize must be 'tokens' or 'sum', got '{normalize}'")


def rows_first(scores: Scores) -> Scores:
    return scores.map(lambda t: t[:, 0])
