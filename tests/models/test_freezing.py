"""model.train_top_layers: only the last N transformer blocks and the final norm train, their gradients are
those of the whole model, the backward pass never enters a frozen block, and bad settings are clear errors."""

import pytest
import torch

from alignlab.config import ConfigError, load_config
from alignlab.models.freezing import train_top_layers
from alignlab.models.loading import ModelLoadError, ModelSettings, load_causal_lm
from alignlab.models.tiny import tiny_model

# What trains with the top block of three, named by hand for each architecture's module names.
TRAINED = {
    "llama": ("model.layers.2.", "model.norm."),
    "gpt2": ("transformer.h.2.", "transformer.ln_f."),
}


def _loss(model, ids):
    return model(input_ids=ids, labels=ids).loss


# The top block's input needs no gradient, so torch notes that its backward hook sees outputs only.
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("arch", sorted(TRAINED))
def test_top_block_gradients_equal_the_full_models_and_nothing_else_trains(arch):
    model, _ = tiny_model(arch, seed=1, layers=3)
    ids = torch.randint(5, 100, (2, 12), generator=torch.Generator().manual_seed(0))
    _loss(model, ids).backward()
    full = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    train_top_layers(model, 1)
    entered = []
    for block in model.base_model.layers if arch == "llama" else model.transformer.h:
        block.register_full_backward_hook(lambda module, gin, gout: entered.append(module))
    _loss(model, ids).backward()
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {n for n in full if n.startswith(TRAINED[arch])}
    for name, param in model.named_parameters():
        if name in trained:
            torch.testing.assert_close(param.grad, full[name])
        else:
            assert param.grad is None, name
    top = (model.base_model.layers if arch == "llama" else model.transformer.h)[2]
    assert entered == [top]  # autograd stopped above the frozen blocks


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="train_top_layers"):
        load_config(None, ["model.train_top_layers=0"])
    with pytest.raises(ModelLoadError, match="train_top_layers is 5 but the model has 2 transformer blocks"):
        load_causal_lm(ModelSettings(path="tiny:llama", train_top_layers=5))
    with pytest.raises(ModelLoadError, match="train_top_layers and model.lora"):
        load_causal_lm(ModelSettings(path="tiny:llama", train_top_layers=1, lora={"r": 4}))


def test_a_training_step_moves_only_the_top_block(tmp_path):
    from tests.train._runs import one_step

    _, grads, _, trainer = one_step(
        ["model.train_top_layers=1", "train.steps=1", "train.batch_size=4", f"out={tmp_path}",
         "train.progress=false", "data.limit=8"]
    )  # fmt: skip
    assert grads and all(n.startswith(("model.layers.1.", "model.norm.")) for n in grads)
    assert {id(p) for group in trainer.optimizer.param_groups for p in group["params"]} == {
        id(p) for p in trainer.context.unwrapped_policy().parameters() if p.requires_grad
    }


def test_a_reward_model_trains_its_top_blocks_norm_and_head():
    from alignlab.models.loading import load_model

    model = load_model(ModelSettings(path="tiny:llama", kind="reward_model", train_top_layers=1))
    names = [n for n, _ in model.named_parameters()]
    top = max(int(n.split(".")[2]) for n in names if n.startswith("backbone.layers."))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    # by hand: the last block, the final norm and the new reward head; embeddings and lower blocks frozen
    assert trained == {
        n for n in names if n.startswith((f"backbone.layers.{top}.", "backbone.norm.", "reward_head."))
    }
    assert any(n.startswith("backbone.layers.0.") for n in names) and top >= 1
    ids = torch.randint(5, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    hidden = model.backbone(input_ids=ids).last_hidden_state[:, -1]
    model.reward_head(hidden).sum().backward()
    assert all((p.grad is not None) == (n in trained) for n, p in model.named_parameters())
    with pytest.raises(ModelLoadError, match="train_top_layers is 9 but the model has"):
        load_model(ModelSettings(path="tiny:llama", kind="reward_model", train_top_layers=9))
