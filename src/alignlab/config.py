"""The run configuration, as users import it: ``from alignlab.config import load_config, RunConfig, ...``.

The settings live with the layer that owns them (``data.settings``, ``models.loading``, ``train.settings``,
``train.online_settings``) and the run config that composes them is the loop's (``train/config.py``); this
module gathers the public names in one place. It sits above ``train`` in the layers, so nothing in
the library below it imports it.
"""

from __future__ import annotations

from alignlab.data.settings import DataSettings
from alignlab.models.loading import LoraSettings, ModelSettings
from alignlab.train.config import (
    ConfigError,
    RunConfig,
    apply_override,
    check_device,
    dump_config,
    format_validation_error,
    load_config,
    parse_override,
)
from alignlab.train.online_settings import (
    AdaptiveKL,
    AdvantageSettings,
    KLSettings,
    OnlineSettings,
    ReferenceUpdate,
    RewardShaping,
    SamplerSettings,
)
from alignlab.train.settings import ReferenceSettings, Strict, TrainSettings

__all__ = [
    "AdaptiveKL",
    "AdvantageSettings",
    "ConfigError",
    "DataSettings",
    "KLSettings",
    "LoraSettings",
    "ModelSettings",
    "OnlineSettings",
    "ReferenceSettings",
    "ReferenceUpdate",
    "RewardShaping",
    "RunConfig",
    "SamplerSettings",
    "Strict",
    "TrainSettings",
    "apply_override",
    "check_device",
    "dump_config",
    "format_validation_error",
    "load_config",
    "parse_override",
]
