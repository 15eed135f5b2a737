"""Recipe settings: validated like the run config, layered defaults → profile → user → --steps."""

from __future__ import annotations

import pytest

from alignlab.objectives import all_specs, get
from alignlab.recipes.compare import can_feed, offline_objectives, resolve_objectives, run_compare
from alignlab.recipes.quickstart import run_quickstart
from alignlab.recipes.settings import (
    QUICKSTART_FAST,
    CompareSettings,
    QuickstartSettings,
    RecipeSettingsError,
    resolve_settings,
)


def test_layers_merge_key_by_key_and_the_recipe_seed_seeds_world_and_annotators():
    cfg = resolve_settings(
        QuickstartSettings,
        QUICKSTART_FAST,
        {"seed": 7, "world": {"num_heldout": 20}, "dpo": {"beta": 0.5}},
        {"dpo": {"steps": 9}},
        where="quickstart",
    )
    # fast profile, then the user's keys, then --steps; untouched keys keep the recipe defaults.
    assert (cfg.world.num_train, cfg.world.num_heldout) == (64, 20)
    assert (cfg.dpo.steps, cfg.dpo.batch_size, cfg.dpo.learning_rate, cfg.dpo.beta) == (9, 16, 2e-4, 0.5)
    assert cfg.dpo.train() == {"steps": 9, "batch_size": 16, "learning_rate": 2e-4}  # beta is the objective's
    assert cfg.reward_model.learning_rate == 1e-3 and cfg.annotators.flip_rate == 0.25
    assert cfg.world_config().seed == 7 and cfg.annotator_settings().seed == 7


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"sft": {"stpes": 3}},
            r"quickstart\.sft\.stpes: this section has no setting 'stpes'\. Did you mean 'steps'\?",
        ),
        ({"annotator": {}}, r"quickstart\.annotator: .*Did you mean 'annotators'\?"),
        ({"world": {"num_trian": 3}}, r"quickstart\.world\.num_trian: .*Did you mean 'num_train'\?"),
        ({"dpo": {"beta": -1}}, r"quickstart\.dpo\.beta: Input should be greater than 0"),
        ({"world": {"seed": 3}}, r"quickstart\.world\.seed: set the recipe's top-level 'seed' instead"),
    ],
)
def test_a_misspelt_or_bad_key_is_an_error_before_anything_runs(tmp_path, settings, message):
    with pytest.raises(RecipeSettingsError, match=message):
        run_quickstart(tmp_path, fast=True, settings=settings)
    assert not any(tmp_path.iterdir())  # nothing trained


def test_compare_settings_are_validated_too(tmp_path):
    with pytest.raises(RecipeSettingsError, match=r"sim compare\.budget\.step: .*Did you mean 'steps'\?"):
        run_compare(tmp_path, "dpo", settings={"budget": {"step": 3}})
    assert resolve_settings(CompareSettings, None, where="x").budget.train() == {
        "steps": 80,
        "batch_size": 32,
        "learning_rate": 1e-3,
    }


def test_compare_skips_what_its_data_cannot_feed_by_asking_the_registry():
    league = set(offline_objectives())
    # Each excluded objective says why: data the simulated annotators do not make.
    assert get("selm").requires == {"reference_response"} and "selm" not in league
    assert get("d2o").requires == {"reference_samples"} and "d2o" not in league
    assert get("longpo").requires == {"long_and_short_context"} and "longpo" not in league
    assert {"dpo", "ipo", "kto", "simpo", "discopop"} <= league
    assert league == {s.name for s in all_specs() if can_feed(s)}
    assert all(not s.requires and s.family != "reward_model" for s in all_specs() if s.name in league)
    with pytest.raises(
        ValueError, match="cannot feed 'd2o': it requires each record carries responses sampled"
    ):
        resolve_objectives("dpo,d2o")
