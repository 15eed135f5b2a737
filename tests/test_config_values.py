"""Config values are checked at load: finiteness and ranges, devices that exist, files that are YAML,
batches that fit the data; each error is a ConfigError naming the key, never a traceback later."""

from __future__ import annotations

import pytest
import torch

from alignlab.config import ConfigError, load_config
from alignlab.train.data import check_batch_fits


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.epochs=.inf", "train.epochs"),
        ("train.epochs=.nan", "train.epochs"),
        ("train.learning_rate=.inf", "train.learning_rate"),
        ("train.max_grad_norm=.nan", "train.max_grad_norm"),
        ("train.adam_betas=[2,3]", "each Adam beta must be in [0, 1)"),
        ("train.adam_betas=[0.9,1.0]", "each Adam beta must be in [0, 1)"),
        ("train.seed=-1", "train.seed"),
        ("train.seed=4294967296", "train.seed"),
        ("train.batch_size=0", "train.batch_size"),
        ("data.eval_fraction=1.0", "data.eval_fraction"),
        ("data={max_prompt_length: 2000, max_length: 1024}", "must be at most data.max_length"),
        ("model.lora={dropout: .nan}", "model.lora.dropout"),
        ("objectives=[{name: dpo, beta: -0.1}]", "'beta' must be > 0"),
        ("objectives=[{name: dpo, beta: 0}]", "'beta' must be > 0"),
        ("objectives=[{name: dpo, beta: .inf}]", "'beta' must be a finite number"),
        ("objectives=[{name: cpo, label_smoothing: 0.7}]", "'label_smoothing' must be in [0, 0.5)"),
        ("model.device=tpu", "is not a device"),
        ("model.device=cuda:99", "this machine has"),
    ],
)
def test_bad_values_are_config_errors(override, needle):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert needle in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_on_a_cpu_machine():
    with pytest.raises(ConfigError, match="model.device is 'cuda' but this machine has no CUDA device"):
        load_config(None, ["model.device=cuda"])


def test_good_values_pass():
    config = load_config(None, ["train.adam_betas=[0.0,0.5]", "objectives=[{name: dpo, beta: 0.5}]"])
    assert config.train.adam_betas == (0.0, 0.5)


def test_folder_and_binary_configs(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    binary = tmp_path / "model.safetensors"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(binary)
    nul = tmp_path / "c.yaml"
    nul.write_bytes(b"train:\x00 {}")
    with pytest.raises(ConfigError, match="binary data"):
        load_config(nul)


def test_batch_larger_than_data_and_empty_data():
    assert check_batch_fits(8, 8) is None
    assert "train.batch_size (9) is larger than the training data (8 records)" in check_batch_fits(8, 9)
    with pytest.raises(ConfigError, match="no training records"):
        check_batch_fits(0, 1)
