"""Loading a model with LoRA adapters prints no dependency's deprecation warning."""

from __future__ import annotations

import warnings

from alignlab.models.loading import ModelSettings, load_causal_lm


def test_lora_loads_without_a_future_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_causal_lm(ModelSettings(path="tiny:llama", lora={"r": 4}), for_training=True)
    assert any("lora_" in name for name, _ in model.named_parameters())  # the adapters are there
    shown = [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not shown, shown
