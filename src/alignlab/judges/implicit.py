"""Implicit rewards read from policies: DPO's β·(log π − log π_ref) and RewardBench's reference-free forms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge
from alignlab.scoring.rows import score_rows

VARIANTS = ("ref", "sum", "avg", "norm")


@register_judge(
    "implicit_reward",
    paper="Rafailov et al. 2023 DPO (arXiv 2305.18290); Lambert et al. 2024 RewardBench (arXiv 2403.13787)",
)
class ImplicitRewardJudge(Judge):
    """A DPO-trained policy as a reward model: r = β·(log π(y|x) − log π_ref(y|x)), or reference-free.

    ``variant``: ``ref`` (needs ``reference``), ``sum`` = log π(y|x), ``avg`` = log π(y|x)/|y|,
    ``norm`` = −‖(log π(y_t|·))_t‖₂ (the L2 norm of the per-token log-probs, negated).
    Checked: allenai/reward-bench rewardbench/dpo.py (DPOInference.inference_step: chosen_logratios =
    policy − ref logps; get_batch_logps with average_log_prob / norm_log_prob = −torch.norm(p=2)).

    Config: ``{name: implicit_reward, path: runs/my-dpo}``. A run directory (or its ``model/``) gives the
    defaults of the run that trained it: ``reference`` = its ``model.path``, ``beta`` = its first objective's
    ``beta``, inputs cut as its ``data.max_length`` / ``data.max_prompt_length`` did, so the judge's accuracy
    on the run's held-out pairs is the run's ``eval/rewards/accuracies``.
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str  # the policy: a run directory, its model/ folder, a model folder, builtin:NAME or tiny:ARCH
        reference: str | None = None  # default: the run's model.path (variant ref)
        beta: float | None = Field(None, gt=0)  # default: the run's objective beta, else 1
        variant: str | None = None  # ref (with a reference), sum, avg, norm
        max_length: int | None = Field(None, gt=1)  # default: as the run trained (else the model's limit)
        max_prompt_length: int | None = Field(None, gt=0)
        device: str = "cpu"
        batch_size: int = Field(16, gt=0)

    def __init__(
        self,
        policy: Any,
        tokenizer: Any,
        reference: Any = None,
        beta: float = 1.0,
        variant: str | None = None,
        batch_size: int = 16,
    ):
        variant = variant or ("ref" if reference is not None else "avg")
        if variant not in VARIANTS:
            raise ValueError(f"implicit reward variant must be one of {VARIANTS}, got '{variant}'")
        if variant == "ref" and reference is None:
            raise ValueError("variant 'ref' needs a reference model; pass reference= or use sum/avg/norm")
        self.policy, self.reference, self.tokenizer = policy, reference, tokenizer
        self.beta, self.variant, self.batch_size = beta, variant, batch_size
        self.truncation: Any = None  # None: score_rows' default (the model's limits)

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> ImplicitRewardJudge:
        from alignlab.judges.registry import JudgeConfigError

        model_dir, run = run_of(settings.path)
        reference = settings.reference or (run.get("model") or {}).get("path")
        if reference is None and settings.variant in (None, "ref"):
            raise JudgeConfigError(
                f"{where}.reference: {settings.path} is not a run directory with a config.yaml naming its "
                "model.path; give reference: (the starting model) or a reference-free variant (sum, avg, norm)"
            )
        beta = settings.beta or run_beta(run) or 1.0
        policy, tokenizer = load_lm(model_dir, settings.device)
        ref_model = (
            load_lm(reference, settings.device)[0]
            if reference and settings.variant in (None, "ref")
            else None
        )
        judge = cls(policy, tokenizer, ref_model, beta, settings.variant, settings.batch_size)
        judge.truncation = run_truncation(run, settings.max_length, settings.max_prompt_length)
        return judge

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        needs = frozenset({"token_logps"}) if self.variant == "norm" else frozenset()
        run = lambda model: score_rows(  # noqa: E731
            model, self.tokenizer, prompts, completions, needs, self.batch_size, self.truncation
        )
        policy = run(self.policy)
        if self.variant == "ref":
            return self.beta * (policy.logps - run(self.reference).logps)
        if self.variant == "sum":
            return policy.logps
        if self.variant == "avg":
            return policy.logps / policy.lengths.clamp(min=1)
        return -(policy.token_logps * policy.token_mask).norm(p=2, dim=-1)


def run_of(path: str) -> tuple[str, dict[str, Any]]:
    """(the model to load, the config of the run that wrote it, {} when there is none) for a policy path."""
    import yaml

    p = Path(path).expanduser()
    if (p / "model").is_dir():
        p = p / "model"
    config = p.parent / "config.yaml"
    if not p.is_dir():
        return path, {}  # builtin:NAME, tiny:ARCH or a hub id
    run = (yaml.safe_load(config.read_text()) or {}) if config.exists() else {}
    return str(p), run if isinstance(run, dict) else {}


def run_beta(run: dict[str, Any]) -> float | None:
    """The first objective's ``beta`` in a run's config, if it has one."""
    for entry in run.get("objectives") or []:
        if isinstance(entry, dict) and entry.get("beta") is not None:
            return float(entry["beta"])
    return None


def run_truncation(run: dict[str, Any], max_length: int | None, max_prompt_length: int | None) -> Any:
    """How to cut inputs: the given limits, else the run's data settings, else None (the model's limits)."""
    from alignlab.data.tokenize import Truncation

    data = run.get("data") or {}
    length = max_length or data.get("max_length")
    if length is None:
        return None
    prompt = max_prompt_length or data.get("max_prompt_length") or max(1, int(length) // 2)
    return Truncation(
        max_length=int(length),
        max_prompt_length=int(prompt),
        prompt=data.get("truncate_prompt", "keep_end"),
        completion=data.get("truncate_completion", "keep_start"),
    )


def load_lm(path: str, device: str) -> tuple[Any, Any]:
    """(causal LM in eval mode, tokenizer) for a model folder, builtin:NAME, tiny:ARCH or a hub id."""
    from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer

    settings = ModelSettings(path=path, device=device)
    model = load_causal_lm(settings, for_training=False)
    model.eval()
    return model, load_tokenizer(settings)
