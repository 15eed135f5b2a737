"""RewardModel: pooling, layouts, saving and loading, errors, and a trained run loaded as a judge by path.

Every expected reward is computed here from plain forward passes of the backbone (one unpadded row per
completion) and the head's weights in numpy, never through RewardModel's own pooling code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, BertConfig, LlamaConfig

from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import tokenize_records
from alignlab.models.loading import ModelLoadError, ModelSettings, load_model
from alignlab.models.reward import RewardModel
from alignlab.models.tiny import tiny_tokenizer
from alignlab.scoring.engine import Engine

TOK = tiny_tokenizer()


GROUPS = [
    ("add two and three", ["five", "six is the answer"]),
    ("say hello", ["hello", "goodbye to you", "hi"]),
    ("count to three", ["one two three"]),
]


def _records() -> list[Record]:
    return [Record(p, list(cs)) for p, cs in GROUPS]


def _batch(layout: str):
    records = _records()
    groups, _ = tokenize_records(records, TOK)
    return make_batch(records, groups, layout, pad_id=TOK.pad_token_id)


def _rows() -> list[list[int]]:
    """Token ids of prompt + completion + EOS for every completion, in flat order (no padding)."""
    out = []
    for prompt, completions in GROUPS:
        p = TOK(prompt, add_special_tokens=True)["input_ids"]
        for c in completions:
            out.append(p + TOK(c, add_special_tokens=False)["input_ids"] + [TOK.eos_token_id])
    return out


def _hidden(backbone, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return backbone(input_ids=torch.tensor([ids])).last_hidden_state[0].double().numpy()


def _manual_rewards(model: RewardModel, pooling: str) -> np.ndarray:
    w = model.reward_head.weight.detach().double().numpy()
    b = model.reward_head.bias.detach().double().numpy()
    out = []
    for ids in _rows():
        h = _hidden(model.backbone, ids)
        pooled = {"last": h[-1], "mean": h.mean(0), "cls": h[0]}[pooling]
        out.append(pooled @ w.T + b)
    out = np.array(out)
    return out[:, 0] if out.shape[1] == 1 else out


def _rewards(model: RewardModel, layout: str) -> np.ndarray:
    with torch.no_grad():
        return Engine(layout)(model.eval(), _batch(layout), frozenset({"rewards"})).rewards.double().numpy()


@pytest.mark.parametrize("pooling", ["last", "mean", "cls"])
def test_pooling_matches_manual_hidden_states(pooling):
    model = RewardModel.from_base("tiny:llama", pooling=pooling, seed=1)
    want = _manual_rewards(model, pooling)
    assert np.allclose(_rewards(model, "separate"), want, atol=1e-5)


def test_packed_and_separate_layouts_give_the_same_rewards():
    model = RewardModel.from_base("tiny:llama", seed=2)
    assert model.pooling == "last" and model.supports_packed()
    packed, separate = _rewards(model, "packed"), _rewards(model, "separate")
    assert packed.shape == (6,)
    assert np.allclose(packed, separate, atol=1e-5)
    assert np.allclose(packed, _manual_rewards(model, "last"), atol=1e-5)
    # A reward model has no LM head: the engine refuses log-prob needs.
    with pytest.raises(ValueError, match="only rewards/hidden"):
        Engine("packed")(model, _batch("packed"), frozenset({"token_logps"}))


def test_several_attributes_shape_and_values():
    model = RewardModel.from_base("tiny:gpt2", num_attributes=3, attribute_names=["a", "b", "c"], seed=3)
    got = _rewards(model, "separate")
    assert got.shape == (6, 3)
    assert np.allclose(got, _manual_rewards(model, "last"), atol=1e-5)


def test_save_and_load_round_trip_by_path(tmp_path):
    model = RewardModel.from_base("tiny:llama", num_attributes=2, pooling="mean", attribute_names=["x", "y"])
    with torch.no_grad():
        model.reward_head.bias.copy_(torch.tensor([0.25, -1.5]))  # something from_base would not make
    model.save_pretrained(tmp_path / "rm")
    files = sorted(p.name for p in (tmp_path / "rm").iterdir())
    assert files == ["alignlab_reward_model.json", "config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "rm" / "alignlab_reward_model.json").read_text())
    assert meta["pooling"] == "mean" and meta["num_attributes"] == 2 and meta["attribute_names"] == ["x", "y"]
    loaded = RewardModel.from_pretrained(str(tmp_path / "rm"))
    assert loaded.pooling == "mean" and loaded.attribute_names == ["x", "y"]
    assert np.array_equal(_rewards(loaded, "separate"), _rewards(model, "separate"))
    # load_model recognises the saved folder (model.kind auto) and returns the reward model.
    again = load_model(ModelSettings(path=str(tmp_path / "rm"), device="cpu"), for_training=False)
    assert isinstance(again, RewardModel)
    assert np.array_equal(_rewards(again, "separate"), _rewards(model, "separate"))
    with pytest.raises(FileNotFoundError, match="alignlab_reward_model.json"):
        RewardModel.from_pretrained(tmp_path)


def test_load_model_kinds():
    assert isinstance(load_model(ModelSettings(device="cpu"), wants_rewards=True), RewardModel)
    assert not isinstance(load_model(ModelSettings(device="cpu")), RewardModel)
    with pytest.raises(ModelLoadError, match="model.lora"):
        load_model(ModelSettings(kind="reward_model", lora={"r": 4}, device="cpu"))
    with pytest.raises(ModelLoadError, match="unknown tiny architecture 'nope'"):
        load_model(ModelSettings(kind="reward_model", device="cpu", path="tiny:nope"))


def _tiny_bert(max_positions: int = 64) -> RewardModel:
    config = BertConfig(
        vocab_size=len(TOK),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
    )
    torch.manual_seed(0)
    return RewardModel(AutoModel.from_config(config))


def test_encoder_mean_pooling_and_clear_errors():
    model = _tiny_bert()
    assert model.is_encoder and model.pooling == "mean" and not model.supports_packed()
    assert np.allclose(_rewards(model, "separate"), _manual_rewards(model, "mean"), atol=1e-5)
    with pytest.raises(ValueError, match="packed layout.*train.layout: separate"):
        _rewards(model, "packed")
    with pytest.raises(ValueError, match="packed layout"):
        _rewards(RewardModel.from_base("tiny:llama", pooling="mean"), "packed")
    with pytest.raises(ValueError, match="data.max_length: 4"):
        _rewards(_tiny_bert(max_positions=4), "separate")
    short = LlamaConfig(
        vocab_size=len(TOK),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=6,
    )
    with pytest.raises(ValueError, match="takes at most 6"):
        _rewards(RewardModel(AutoModel.from_config(short)), "packed")
    backbone = AutoModel.from_config(short)
    with pytest.raises(ValueError, match="model.pooling"):
        RewardModel(backbone, pooling="max")
    with pytest.raises(ValueError, match="num_attributes"):
        RewardModel(backbone, num_attributes=0)
    with pytest.raises(ValueError, match="attribute_names has 1 names"):
        RewardModel(backbone, num_attributes=2, attribute_names=["only"])


def test_trained_run_loads_as_judge_by_path(tmp_path):
    from alignlab.cli import main
    from alignlab.judges.reward_model import load_judge

    run = tmp_path / "rm-run"
    sets = {
        "model.path": "tiny:llama",
        "model.kind": "reward_model",
        "data.train": "builtin:pairs",
        "data.limit": "32",
        "data.max_length": "64",
        "objectives": "[bt]",
        "train.steps": "3",
        "train.batch_size": "8",
        "train.learning_rate": "1e-2",
        "train.progress": "false",
    }
    main(["train", "--out", str(run), *[f"--set={k}={v}" for k, v in sets.items()]])
    judge = load_judge(str(run))  # the run directory, not its model/ folder
    prompts = ["Repeat: good", "Repeat: one two"]
    completions = ["good", "one sorry"]
    got = judge.score(prompts, completions).double().numpy()

    # Independent reading of the saved folder: the body from config.json, weights from safetensors.
    folder = run / "model"
    state = load_file(str(folder / "model.safetensors"))
    body = AutoModel.from_config(AutoConfig.from_pretrained(folder))
    body.load_state_dict({k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")})
    body.eval()
    w, b = state["reward_head.weight"].double().numpy(), state["reward_head.bias"].double().numpy()
    want = []
    for p, c in zip(prompts, completions):
        ids = TOK(p)["input_ids"] + TOK(c, add_special_tokens=False)["input_ids"] + [TOK.eos_token_id]
        want.append(float(_hidden(body, ids)[-1] @ w[0] + b[0]))
    assert got.shape == (2,)
    assert np.allclose(got, want, atol=1e-5)
    # The saved weights are the trained ones, not the seeded initial head.
    initial = RewardModel.from_base("tiny:llama", seed=0).reward_head.weight.detach()
    assert not torch.allclose(state["reward_head.weight"], initial)
