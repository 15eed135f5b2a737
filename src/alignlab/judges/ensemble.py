"""Reward-model ensembles (mean, worst case, uncertainty-weighted) and ensemble preference strength."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.data.records import Record
from alignlab.judges.base import Judge, JudgeBatch, Prompt, check_lengths
from alignlab.judges.registry import register_judge

MODES = ("mean", "min", "uwo")


def aggregate(rewards: Tensor, mode: str = "mean", lam: float = 0.5, penalty: str = "var") -> Tensor:
    """Combine member rewards ``[M, N]`` into ``[N]``.

    mean: (1/M) Σ_i r_i.  min (WCO): min_i r_i.  uwo: mean − λ·Var_i(r_i) (``penalty="var"``, Coste et al.)
    or mean − λ·Std_i(r_i) (``penalty="std"``); population variance (divide by M).
    Checked against Coste et al. 2023 (arXiv 2310.02743) §3 as the METHODS block gives it (no code read).
    """
    if rewards.dim() != 2:
        raise ValueError(f"aggregate: expected member rewards [M, N], got shape {tuple(rewards.shape)}")
    if mode == "mean":
        return rewards.mean(0)
    if mode == "min":
        return rewards.min(0).values
    if mode == "uwo":
        if penalty not in ("var", "std"):
            raise ValueError(f"ensemble penalty must be 'var' or 'std', got '{penalty}'")
        var = rewards.var(0, unbiased=False)
        spread = var if penalty == "var" else var.sqrt()
        return rewards.mean(0) - lam * spread
    raise ValueError(f"ensemble mode must be one of {MODES}, got '{mode}'")


@register_judge(
    "rm_ensemble",
    paper="Coste et al. 2023 'Reward Model Ensembles Help Mitigate Overoptimization' (arXiv 2310.02743)",
)
class EnsembleJudge(Judge):
    """Several reward models scored together: mean, worst case (min) or mean − λ·(var or std).

    Members are any scalar judges (reward models, rules, reward functions); in a config each member is
    a judge spec of its own: ``{name: rm_ensemble, mode: min, members: [{name: reward_model, path: …}, …]}``.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        members: list[str | dict[str, Any]] = Field(min_length=1)  # judge specs
        mode: Literal["mean", "min", "uwo"] = "mean"
        lam: float = 0.5
        penalty: Literal["var", "std"] = "var"

    def __init__(self, members: Sequence[Judge], mode: str = "mean", lam: float = 0.5, penalty: str = "var"):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if mode not in MODES:
            raise ValueError(f"ensemble mode must be one of {MODES}, got '{mode}'")
        self.members, self.mode, self.lam, self.penalty = list(members), mode, lam, penalty

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> EnsembleJudge:
        from alignlab.judges.build import build_members

        members = build_members(settings.members, f"{where}.members", context)
        return cls(members, settings.mode, settings.lam, settings.penalty)

    def member_scores(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        """[M, N]: every member's reward for every completion."""
        return self.member_scores_batch(JudgeBatch(prompts, completions))

    def member_scores_batch(self, batch: JudgeBatch) -> Tensor:
        """[M, N]: every member's reward for every completion, each member given the whole context."""
        rows = [m.score_batch(batch).float() for m in self.members]
        if any(r.dim() != 1 for r in rows):
            raise ValueError("ensemble members must give one scalar reward per completion")
        return torch.stack(rows)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        return self.score_batch(JudgeBatch(prompts, completions))

    def score_batch(self, batch: JudgeBatch) -> Tensor:
        return aggregate(self.member_scores_batch(batch), self.mode, self.lam, self.penalty)


@register_judge(
    "rm_preference_strength",
    paper="Wang et al. 2024 'Secrets of RLHF in LLMs Part II: Reward Modeling' (arXiv 2401.06080)",
)
class PreferenceStrength(Judge):
    """Preference strength of labelled pairs from an ensemble: d = mean_m (r_m(y_w) − r_m(y_l)), and its std."""

    def __init__(self, ensemble: EnsembleJudge):
        self.ensemble = ensemble

    def strength(self, records: Sequence[Record]) -> tuple[Tensor, Tensor]:
        """(mean, std) over members of r(chosen) − r(rejected) for each pair record ([P] each)."""
        prompts, chosen, rejected = [], [], []
        for r in records:
            if r.ranking is None or len(r.completions) != 2 or r.ranking[0] == r.ranking[1]:
                raise ValueError("preference strength needs pair records with a strict ranking")
            w, lose = (0, 1) if r.ranking[0] < r.ranking[1] else (1, 0)
            prompts.append(r.prompt)
            chosen.append(r.completions[w])
            rejected.append(r.completions[lose])
        n = len(prompts)
        scores = self.ensemble.member_scores(prompts + prompts, chosen + rejected)
        diff = scores[:, :n] - scores[:, n:]
        return diff.mean(0), diff.std(0, unbiased=False)

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        return self.ensemble.score(prompts, completions)


def reweigh_by_strength(
    records: Sequence[Record],
    strength: Tensor,
    flip_below: float = -1.0,
    ambiguous_within: float = 0.1,
    margin_scale: float = 1.0,
) -> list[Record]:
    """Secrets-II style data cleaning: flip pairs with d < ``flip_below``, drop |d| < ``ambiguous_within``,
    and give the rest ``meta.margin = margin_scale·max(d, 0)`` for ``bt_margin`` (an adaptive margin
    increasing in d). Thresholds are data-specific (the paper tunes them; unverified)."""
    out = []
    for record, d in zip(records, strength.tolist()):
        if abs(d) < ambiguous_within:
            continue
        if d < flip_below:
            record = dataclasses.replace(record, ranking=[record.ranking[1], record.ranking[0]])
            d = -d
        meta = {**record.meta, "margin": margin_scale * max(d, 0.0)}
        out.append(dataclasses.replace(record, meta=meta))
    return out
