"""Statistics asked for only to log (``token_entropy_metric``) and LM-head chunks kept instead of
checkpointed (``KEEP_LOGITS_BYTES``): the same values and gradients as a full-model forward computed here."""

import pytest
import torch

import alignlab.scoring.engine as engine_module
from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import tokenize_records
from alignlab.models.tiny import tiny_model
from alignlab.scoring.engine import Engine


def _setup():
    torch.manual_seed(0)
    model, tokenizer = tiny_model("qwen2")
    records = [
        Record("Reverse the words: red blue", ["blue red", "red blue green"], ranking=[0, 1]),
        Record("hello", ["hi there friend", "hi"], ranking=[0, 1]),
    ]
    groups, _ = tokenize_records(records, tokenizer)
    return model, records, groups


def _by_hand(model, groups, entropy_weight):
    """Per-token log-probs and entropies from the full model's logits, and the gradient of
    Σ log π(y_t) + entropy_weight · Σ H_t, one sequence at a time (no engine)."""
    model.zero_grad()
    logps, entropies, total = [], [], 0.0
    for g in groups:
        for c in g.completion_ids:
            ids = torch.tensor([g.prompt_ids + c])
            logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
            rows = torch.arange(len(g.prompt_ids) - 1, len(g.prompt_ids) - 1 + len(c))
            lp = logp[rows, torch.tensor(c)]
            ent = -(logp[rows].exp() * logp[rows]).sum(-1)
            total = total + lp.sum() + entropy_weight * ent.sum()
            logps.append(lp.detach())
            entropies.append(ent.detach())
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logps, entropies, grads


def _by_engine(model, records, groups, needs, entropy_weight):
    model.zero_grad()
    batch = make_batch(records, groups, "packed")
    scores = Engine("packed", logits_chunk_size=5)(model, batch, needs)
    mask = scores.token_mask
    loss = (scores.token_logps * mask).sum() + entropy_weight * (scores.token_entropy * mask).sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return scores, grads


@pytest.mark.parametrize("keep_bytes", [0, 2**30], ids=["checkpointed", "kept"])
@pytest.mark.parametrize("logged_only", [True, False], ids=["entropy_logged", "entropy_in_loss"])
def test_values_and_gradients_match_full_forward(monkeypatch, keep_bytes, logged_only):
    monkeypatch.setattr(engine_module, "KEEP_LOGITS_BYTES", keep_bytes)
    model, records, groups = _setup()
    weight = 0.0 if logged_only else 0.3  # a logged entropy carries no gradient; a loss term does
    logps, entropies, expected_grads = _by_hand(model, groups, weight)
    needs = {"token_logps", "token_entropy_metric" if logged_only else "token_entropy"}
    scores, grads = _by_engine(model, records, groups, needs, weight)
    assert scores.token_entropy.requires_grad is (not logged_only)
    i = 0
    for g in groups:
        for c in g.completion_ids:
            assert torch.allclose(scores.token_logps[i, : len(c)], logps[i], atol=1e-5)
            assert torch.allclose(scores.token_entropy[i, : len(c)], entropies[i], atol=1e-5)
            i += 1
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        assert torch.allclose(grad, expected_grads[name], atol=1e-5, rtol=1e-4), name


def test_entropy_in_the_loss_wins_over_logged_only():
    model, records, groups = _setup()
    batch = make_batch(records, groups, "packed")
    scores = Engine("packed")(model, batch, {"token_logps", "token_entropy", "token_entropy_metric"})
    assert scores.token_entropy.requires_grad


def test_keeping_the_chunks_depends_on_their_size():
    head = torch.nn.Linear(4, 1000, bias=False)
    h = torch.zeros(engine_module.KEEP_LOGITS_BYTES // (1000 * 4), 4)
    assert engine_module._small_logits(h, head, None, None)
    assert not engine_module._small_logits(torch.zeros(h.shape[0] + 1, 4), head, None, None)
    assert not engine_module._small_logits(h, head, h, head)  # the reference's log-probs count too
