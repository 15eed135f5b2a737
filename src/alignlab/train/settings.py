"""The loop's own settings: the ``train:`` section (steps, batches, optimiser, precision, logging,
checkpoints) and the ``reference:`` section (which model is the reference and where its log-probs are cached).

The train layer owns them; ``train/config.py`` composes them into the run config, and
``alignlab.config`` re-exports them for users.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    # allow_inf_nan=False: `epochs: .inf` or `learning_rate: .nan` are errors, not endless or silent runs.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReferenceSettings(Strict):
    path: str | None = None  # None: the initial policy (or, with LoRA, the base with adapters off)
    cache: bool = True
    cache_dir: str | None = None


class TrainSettings(Strict):
    steps: int | None = Field(None, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(8, gt=0)
    micro_batch_size: int | None = Field(None, gt=0)
    micro_batch_tokens: int | None = Field(None, gt=0)  # or: micro-batches of at most this many tokens
    learning_rate: float = Field(1e-5, gt=0)
    schedule: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    seed: int = Field(0, ge=0, lt=2**32)  # numpy's generators take seeds in [0, 2**32)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    layout: Literal["auto", "packed", "separate"] = "auto"
    attention: Literal["auto", "sdpa", "segment", "branch", "flex"] = "auto"  # see docs/engine.md
    compile: bool = False  # torch.compile the model body
    activation_offload: bool = False  # keep the activations saved for backward in (pinned) CPU memory
    # torch CPU threads: auto = the cores idle at the start (train/threads.py), N, or null (torch's default)
    threads: Annotated[int, Field(gt=0)] | Literal["auto"] | None = "auto"
    tokens_per_row: int = Field(2048, gt=0)
    logits_chunk_size: int = Field(1024, gt=0)
    log_every: int = Field(1, gt=0)
    eval_every: int = Field(0, ge=0)
    save_every: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    tracker: Literal["none", "tensorboard", "wandb", "mlflow"] = "none"
    progress: bool = True

    @field_validator("adam_betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"each Adam beta must be in [0, 1), e.g. [0.9, 0.999]; got {list(value)}")
        return value

    @model_validator(mode="after")
    def _one_micro_batch_rule(self) -> TrainSettings:
        if self.micro_batch_size is not None and self.micro_batch_tokens is not None:
            raise ValueError(
                "set train.micro_batch_size (records per forward pass) or train.micro_batch_tokens "
                "(tokens per forward pass), not both"
            )
        return self
