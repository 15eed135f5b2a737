"""Supervised fine-tuning: the first objective, and the one the others fall back on."""

from __future__ import annotations

from torch import Tensor

from alignlab.objectives.registry import objective
from alignlab.objectives.views import PointBatch


@objective(
    "sft",
    family="sft",
    feedback="demonstrations",
    paper="Ouyang et al. 2022 (InstructGPT, arXiv 2203.02155), supervised fine-tuning stage",
    needs=(),
    needs_for=lambda params: ("prompt_logps",) if params["prompt_loss_weight"] > 0 else (),
)
def sft(batch: PointBatch, prompt_loss_weight: float = 0.0, normalize: str = "tokens") -> Tensor:
    """Token-level cross-entropy on the completion: L = -(1/|y|) Σ_t log π(y_t | x, y_<t).

    On pairs or rankings it imitates the best completion; on labels, the good ones. ``normalize``:
    ``tokens`` averages over each completion's tokens (per-example mean, as TRL's SFTTrainer with
    ``average_tokens_across_devices`` off and batch-mean reduction), ``sum`` uses the summed log-prob.
    ``prompt_loss_weight`` > 0 adds that weight times the prompt's own mean NLL (needs prompt_logps,
    which the engine computes when this is set).
    Checked: standard maximum-likelihood; TRL `SFTTrainer` completion-only loss (`completion_only_loss`).
    """
    items = batch.items
    if normalize not in ("tokens", "sum"):
        raise ValueError(f"sft: normalize must be 'tokens' or 'sum', got '{normalize}'")
    loss = -(items.mean_logps if normalize == "tokens" else items.logps)
    if prompt_loss_weight > 0:
        if items.prompt_logps is None:
            raise ValueError(
                "sft: prompt_loss_weight > 0 needs prompt log-probs (engine need 'prompt_logps')"
            )
        loss = loss - prompt_loss_weight * items.prompt_logps / items.prompt_lengths.clamp(min=1)
    return loss
