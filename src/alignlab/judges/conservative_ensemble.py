"""Conservative reward-model ensembles for RL (Coste et al. 2023, "Reward Model Ensembles Help Mitigate
Overoptimization", arXiv 2310.02743): each member normalised, then mean / worst case (WCO) /
uncertainty-weighted (UWO) — the reward ``ppo`` and ``best_of_n`` optimise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge

OBJECTIVES = ("mean", "wco", "uwo")
VARIANCES = ("sample", "population")


def conservative_reward(
    member_rewards: Tensor, objective: str = "uwo", uwo_coef: float = 0.5, variance: str = "sample"
) -> Tensor:
    """``[M, N]`` member rewards → ``[N]``.

    mean: (1/M)Σ_i r_i.  wco: min_i r_i.  uwo: (1/M)Σ_i r_i − λ·Var_i(r_i), the intra-ensemble variance
    with ``variance="sample"`` (divide by M − 1: the official PPO reward function, ``torch.var``) or
    ``"population"`` (divide by M: the official best-of-n code, ``np.var``).
    Checked: tlc4418/llm_optimization src/reward_modeling/scoring/ppo_reward_functions.py (mean, WCO =
    torch.min, UWO = mean − coeff·torch.var) and src/bon/ensemble_rm.py (np.var); run_bon_ensembles.py
    default UWO weight 0.5.
    """
    if member_rewards.dim() != 2:
        raise ValueError(f"conservative ensemble: expected [members, N], got {tuple(member_rewards.shape)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"conservative ensemble: objective must be one of {OBJECTIVES}, got '{objective}'")
    if variance not in VARIANCES:
        raise ValueError(f"conservative ensemble: variance must be one of {VARIANCES}, got '{variance}'")
    if objective == "mean":
        return member_rewards.mean(0)
    if objective == "wco":
        return member_rewards.min(0).values
    if member_rewards.shape[0] < 2 and variance == "sample":
        raise ValueError("conservative ensemble: the sample variance needs at least 2 members")
    var = member_rewards.var(0, unbiased=variance == "sample")
    return member_rewards.mean(0) - uwo_coef * var


def member_statistics(member_rewards: Tensor) -> tuple[Tensor, Tensor]:
    """Per-member (mean, std) over a calibration sample ``[M, N]``: Coste et al. store each trained reward
    model's mean and (Bessel) std over its evaluation completions and normalise its outputs with them
    (trainer_rm.py: ``config.mean``/``config.std``), so members are on one scale before they are combined."""
    if member_rewards.shape[1] < 2:
        raise ValueError("conservative ensemble: calibration needs at least 2 completions")
    return member_rewards.mean(1), member_rewards.std(1, unbiased=True)


@register_judge(
    "rm_ensemble_conservative",
    paper="Coste et al. 2023 'Reward Model Ensembles Help Mitigate Overoptimization' (arXiv 2310.02743)",
)
class ConservativeEnsembleJudge(Judge):
    """Members normalised to mean 0 / std 1 on a calibration sample, then combined by mean, WCO or UWO.

    ``stats``: per-member (mean, std) ``[M]`` each, or None until :meth:`calibrate` is called on prompts and
    completions (e.g. samples of the initial policy). With ``calibrate_first`` (the config default) the
    first batch it scores — the first rollout, samples of the initial policy — is the calibration sample.
    Without calibration the raw outputs are combined. In a config: ``{name: rm_ensemble_conservative,
    objective: uwo, uwo_coef: 0.5, members: [{name: reward_model, path: runs/rm-1}, …]}``.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        members: list[str | dict[str, Any]] = Field(min_length=1)  # judge specs
        objective: Literal["mean", "wco", "uwo"] = "uwo"
        uwo_coef: float = 0.5
        variance: Literal["sample", "population"] = "sample"
        calibrate_first: bool = True

    def __init__(
        self,
        members: Sequence[Judge],
        objective: str = "uwo",
        uwo_coef: float = 0.5,
        variance: str = "sample",
        stats: tuple[Tensor, Tensor] | None = None,
        calibrate_first: bool = False,
    ):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if objective not in OBJECTIVES:
            raise ValueError(
                f"conservative ensemble: objective must be one of {OBJECTIVES}, got '{objective}'"
            )
        self.members, self.objective, self.uwo_coef, self.variance = (
            list(members),
            objective,
            uwo_coef,
            variance,
        )
        self.stats, self.calibrate_first = stats, calibrate_first

    @classmethod
    def from_settings(
        cls, settings: Settings, where: str, context: dict[str, Any]
    ) -> ConservativeEnsembleJudge:
        from alignlab.judges.build import build_members

        members = build_members(settings.members, f"{where}.members", context)
        return cls(
            members,
            settings.objective,
            settings.uwo_coef,
            settings.variance,
            calibrate_first=settings.calibrate_first,
        )

    def member_scores(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        rows = [m.score(prompts, completions).double() for m in self.members]
        if any(r.dim() != 1 for r in rows):
            raise ValueError("ensemble members must give one scalar reward per completion")
        raw = torch.stack(rows)
        if self.stats is None:
            return raw
        mean, std = self.stats
        return (raw - mean[:, None]) / std.clamp(min=1e-12)[:, None]

    def calibrate(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> None:
        self.stats = None
        self.stats = member_statistics(self.member_scores(prompts, completions))

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        if self.stats is None and self.calibrate_first:
            self.calibrate(prompts, completions)
        scores = self.member_scores(prompts, completions)
        return conservative_reward(scores, self.objective, self.uwo_coef, self.variance).float()
