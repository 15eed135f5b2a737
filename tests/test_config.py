"""Config loading: YAML + overrides, validated, errors that name the key."""

import pytest

from alignlab.config import ConfigError, dump_config, load_config


def test_overrides_apply_in_order_and_append_objectives(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("objectives: dpo\ntrain: {learning_rate: 1.0e-3}\n")
    cfg = load_config(path, ["train.learning_rate=5e-6", "objectives.0.beta=0.2", "objectives.1.name=sft",
                             "objectives.1.weight=0.1", "model.lora.r=8"])  # fmt: skip
    assert cfg.train.learning_rate == 5e-6
    assert cfg.objectives == [{"name": "dpo", "beta": 0.2}, {"name": "sft", "weight": 0.1}]
    assert cfg.model.lora.r == 8 and cfg.model.lora.alpha == 32
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg  # the resolved config reproduces the run


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.batch_size=0"], "train.batch_size"),
        (["train.schedule=exp"], "train.schedule"),
        (["data.truncate_prompt=middle"], "data.truncate_prompt"),
        (["modle.path=x"], "Did you mean 'model'"),
        (["objectives.0.name=dpo", "objectives.0.bta=1"], "did you mean 'beta'"),
        (["train.learning_rate"], "expected key=value"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_the_data_section_is_the_data_layers_settings():
    """DataSettings lives in alignlab.data.settings (the layer that reads and tokenises); the run config
    composes it, `from alignlab.config import DataSettings` still works, and a typo in it still names the
    section's keys."""
    from alignlab.config import DataSettings as FromConfig
    from alignlab.data.settings import DataSettings
    from alignlab.data.tokenize import Truncation

    assert FromConfig is DataSettings
    cfg = load_config(
        None, ["data.max_length=300", "data.max_prompt_length=100", "data.truncate_completion=drop"]
    )
    assert isinstance(cfg.data, DataSettings)
    assert cfg.data.truncation() == Truncation(max_length=300, max_prompt_length=100, completion="drop")
    with pytest.raises(ConfigError, match=r"data.max_lenght: unknown key. Did you mean 'max_length'"):
        load_config(None, ["data.max_lenght=300"])
    with pytest.raises(
        ConfigError, match=r"max_prompt_length \(400\) must be at most data.max_length \(300\)"
    ):
        load_config(None, ["data.max_length=300", "data.max_prompt_length=400"])
