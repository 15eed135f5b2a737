"""Every ``loss_type`` TRL's DPOTrainer accepts is a named alignlab objective with the same value.

TRL 1.16 is run in the test: one DPOTrainer over a tiny model with a different reference model computes
its loss on one batch for each loss type; the summed log-probs of that same batch are computed here by
a plain forward pass of both models, and fed to the alignlab objective the table names. The accepted
loss types are read from TRL's own DPOConfig, so a loss type TRL adds fails this test until it is mapped.
"""

from __future__ import annotations

import re

import pytest
import torch

trl = pytest.importorskip("trl")

from alignlab.models.tiny import tiny_model  # noqa: E402
from alignlab.objectives import get, labeled_loss, pairwise_loss  # noqa: E402

BETA, SMOOTHING, DISCOPOP_TAU = 0.7, 0.1, 0.05

# TRL loss_type -> (alignlab objective, its hyper-parameters for TRL's beta / label_smoothing / discopop_tau).
TRL_TO_ALIGNLAB = {
    "sigmoid": ("dpo", {"beta": BETA}),
    "hinge": ("hinge", {"beta": BETA}),
    "ipo": ("ipo", {"tau": BETA}),
    "exo_pair": ("exo", {"beta": BETA, "epsilon": SMOOTHING}),
    "nca_pair": ("nca", {"beta": BETA}),
    "robust": ("rdpo", {"beta": BETA, "epsilon": SMOOTHING}),
    "bco_pair": ("bco_pair", {"beta": BETA, "reward_shift": False}),
    "sppo_hard": ("sppo_hard", {"beta": BETA}),
    "aot": ("aot", {"beta": BETA, "label_smoothing": SMOOTHING}),
    "aot_unpaired": ("aot_unpaired", {"beta": BETA, "label_smoothing": SMOOTHING}),
    "apo_zero": ("apo_zero", {"beta": BETA}),
    "apo_down": ("apo_down", {"beta": BETA}),
    "discopop": ("discopop", {"beta": BETA, "tau": DISCOPOP_TAU}),
    "sft": ("sft", {"normalize": "sum"}),  # TRL: the batch's token mean; see below
    "sigmoid_norm": ("dpo_norm", {"beta": BETA}),
}

PAIRS = [
    ("add two and three", " five", " six seven"),
    ("say hello", " hello there friend", " no"),
    ("count to three", " one two three", " one two"),
    ("name a colour", " red", " the sky is blue today"),
    ("what is one plus one", " two", " three"),
]


def trl_accepted_loss_types() -> list[str]:
    """The loss types DPOConfig documents as accepted (its ``loss_type`` help lists them in backticks)."""
    text = trl.DPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    return re.findall(r"`'([a-z_]+)'`", text.split("If multiple")[0])


def test_every_trl_dpo_loss_type_names_an_alignlab_objective():
    accepted = trl_accepted_loss_types()
    assert len(accepted) >= 15 and "sigmoid" in accepted and "discopop" in accepted
    assert set(accepted) == set(TRL_TO_ALIGNLAB), "map each TRL loss type to an objective"
    for name, params in TRL_TO_ALIGNLAB.values():
        get(name).check_params(params)  # the hyper-parameters exist under these names
    # TRL's own spelling works as a name too wherever alignlab keeps it as an alias.
    for alias in ("sigmoid", "exo_pair", "nca_pair", "robust", "sigmoid_norm", "aot_pair"):
        assert get(alias).name in {"dpo", "exo", "nca", "rdpo", "dpo_norm", "aot_unpaired"}


@pytest.fixture(scope="module")
def trl_batch(tmp_path_factory):
    from datasets import Dataset

    model, tokenizer = tiny_model("llama", seed=1)
    reference, _ = tiny_model("llama", seed=2)  # a different reference, so that log-ratios are not 0
    dataset = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS])
    args = trl.DPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")),
        per_device_train_batch_size=len(PAIRS),
        beta=BETA,
        label_smoothing=SMOOTHING,
        discopop_tau=DISCOPOP_TAU,
        gradient_checkpointing=False,
        report_to=[],
        use_cpu=True,
        bf16=False,  # TRL's default is bf16; the comparison is in fp32
        padding_free=False,
    )
    trainer = trl.DPOTrainer(
        model=model, ref_model=reference, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    yield trainer, model, reference, inputs
    # The trainer set accelerate's process-wide state; leave none behind for the tests that follow.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def _summed_logps(model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_t log p(token_t | tokens_<t) over completion tokens, and the completion lengths (plain forward)."""
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.double()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    tokens = inputs["input_ids"][:, 1:]
    mask = inputs["completion_mask"][:, 1:].double()
    per_token = logp.gather(-1, tokens[..., None])[..., 0] * mask
    return per_token.sum(-1), mask.sum(-1)


@pytest.mark.parametrize("loss_type", sorted(TRL_TO_ALIGNLAB))
def test_alignlab_objective_equals_trls_loss_on_the_same_batch(trl_batch, loss_type):
    trainer, model, reference, inputs = trl_batch
    trainer.loss_types, trainer.loss_weights = [loss_type], [1.0]
    with torch.no_grad():
        want = float(trainer.compute_loss(model, dict(inputs)))
    logps, lengths = _summed_logps(model, inputs)
    ref_logps, _ = _summed_logps(reference, inputs)
    n = len(PAIRS)  # TRL's batch is [chosen..., rejected...]
    name, params = TRL_TO_ALIGNLAB[loss_type]
    if loss_type == "sft":
        # alignlab's sft gives each completion's summed NLL; TRL averages NLL over all chosen tokens.
        per_example = labeled_loss(name, logps[:n], torch.ones(n), lengths=lengths[:n], **params)
        got = float(per_example.sum() / lengths[:n].sum())
    else:
        per_pair = pairwise_loss(
            name, logps[:n], logps[n:], ref_logps[:n], ref_logps[n:], lengths[:n], lengths[n:], **params
        )
        got = float(per_pair.mean())
    assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
