"""The ``data:`` section of a run config: where the records come from and how they become token ids.

The data layer owns these settings (reading, conversion, truncation are its jobs); ``alignlab.config``
composes them into the run config and re-exports :class:`DataSettings` under its old name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alignlab.data.tokenize import Truncation


class DataSettings(BaseModel):
    # allow_inf_nan=False: `eval_fraction: .nan` is an error, not a silent empty split.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    train: str = "builtin:tasks"
    eval: str | None = None
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    format: str = "auto"
    split: str | None = None
    convert: str | None = None
    convert_args: dict[str, Any] = Field(default_factory=dict)
    on_error: Literal["raise", "skip"] = "raise"
    limit: int | None = Field(None, gt=0)
    max_length: int = Field(1024, gt=1)
    max_prompt_length: int = Field(512, gt=0)
    truncate_prompt: Literal["keep_end", "keep_start"] = "keep_end"
    truncate_completion: Literal["keep_start", "drop"] = "keep_start"

    @model_validator(mode="after")
    def _prompt_fits(self) -> DataSettings:
        # Only when both are given: the default max_prompt_length (512) with a small max_length is fine.
        given = {"max_prompt_length", "max_length"} <= self.model_fields_set
        if given and self.max_prompt_length > self.max_length:
            raise ValueError(
                f"data.max_prompt_length ({self.max_prompt_length}) must be at most data.max_length "
                f"({self.max_length}), which counts prompt and completion together"
            )
        return self

    def truncation(self) -> Truncation:
        """How the tokeniser cuts prompts and completions that do not fit ``max_length``."""
        return Truncation(
            max_length=self.max_length,
            max_prompt_length=self.max_prompt_length,
            prompt=self.truncate_prompt,
            completion=self.truncate_completion,
        )
