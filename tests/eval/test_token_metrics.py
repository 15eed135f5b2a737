"""ches, token_distribution_shift, topk_overopt_indicators and likelihood_displacement against hand values, a
per-prefix recomputation on a tiny transformers model, and the toy example of Razin et al."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.eval.registry import run_metric
from alignlab.eval.token_metrics import response_states
from alignlab.models.tiny import tiny_model


def test_ches_block_cases():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(4, 6))
    same = run_metric("ches", chosen_states=[h], rejected_states=[h])
    assert same.details["scores"][0] == pytest.approx(0.0, abs=1e-12)
    hp = np.zeros((3, 4))
    hp[:, 0] = 1.0
    hn = np.zeros((2, 4))
    hn[:, 1] = 2.0  # orthogonal: CHES = -‖Σh⁺‖² = -9
    res = run_metric("ches", chosen_states=[hp, h], rejected_states=[hn, h])
    assert res.details["scores"][0] == pytest.approx(-9.0)
    norm = run_metric("ches", chosen_states=[hp], rejected_states=[hn], length_normalize=True)
    assert norm.details["scores"][0] == pytest.approx(0 - 9 / 9)


def test_response_states_are_the_prefix_states():
    model = tiny_model("llama", seed=0)[0].eval()
    prompt, response = [5, 9, 11], [20, 21, 22, 23]
    hidden, logits = response_states(model, prompt, response)
    ids = prompt + response
    for k in range(len(response)):  # the state of the prefix (x, y_<k), run alone
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids[: len(prompt) + k]]), output_hidden_states=True)
        assert hidden[k].numpy() == pytest.approx(out.hidden_states[-1][0, -1].double().numpy(), abs=1e-5)
        assert logits[k].numpy() == pytest.approx(out.logits[0, -1].double().numpy(), abs=1e-4)


def test_token_shift_aligned_equals_base_is_all_unshifted():
    rng = np.random.default_rng(1)
    logits = [rng.normal(size=(7, 30)) for _ in range(3)]
    greedy = [lg.argmax(-1) for lg in logits]
    res = run_metric("token_distribution_shift", tokens=greedy, base_logits=logits, aligned_logits=logits)
    assert res["unshifted"].value == 1.0 and res["shifted"].value == 0.0
    assert res["kl_aligned_base"].value == pytest.approx(0.0, abs=1e-12)
    # Hand case: base logits [3, 2, 1, 0]: token 0 rank 1, token 2 rank 3 (marginal), token 3 rank 4 (shifted)
    base = np.array([[3.0, 2, 1, 0]] * 3)
    res = run_metric("token_distribution_shift", tokens=[[0, 2, 3]], base_logits=[base])
    assert [res[k].value for k in ("unshifted", "marginal", "shifted")] == pytest.approx([1 / 3] * 3)
    assert res.details["shifted_tokens"] == [(3, 1)]  # the token the base ranks 4th


def test_topk_uniform_distribution():
    v, k = 50, 10
    res = run_metric("topk_overopt_indicators", logits=[np.zeros((4, v))], k=k)
    assert res["topk_entropy"].value == pytest.approx(math.log(k))
    assert res["topk_mass"].value == pytest.approx(k / v)


def test_likelihood_displacement_toy_no_never_yes():
    # One-token answers; the prompt's hidden state h is trained, the unembeddings are fixed. "No" and "Never"
    # are close; "Yes" points along their difference. DPO on (No ≻ Never) moves h along u_No − u_Never.
    vocab = ["Yes", "No", "Never", "Maybe"]
    u = torch.tensor(
        [[0.0, 3.0, 0.0], [1.0, 0.1, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    h = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    ref = torch.log_softmax(u @ h.detach(), -1)
    before = ref.exp().numpy()
    opt = torch.optim.SGD([h], lr=0.5)
    beta = 0.1
    for _ in range(50):
        logp = torch.log_softmax(u @ h, -1)
        margin = beta * ((logp[1] - ref[1]) - (logp[2] - ref[2]))
        loss = -torch.nn.functional.logsigmoid(margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = torch.softmax(u @ h.detach(), -1).numpy()
    res = run_metric(
        "likelihood_displacement",
        logp_chosen_before=[math.log(before[1])],
        logp_chosen_after=[math.log(after[1])],
        logp_rejected_before=[math.log(before[2])],
        logp_rejected_after=[math.log(after[2])],
        next_token_probs_before=[before],
        next_token_probs_after=[after],
        vocabulary=vocab,
    )
    assert res["displaced_fraction"].value == 1.0  # p(No) fell although "No" was preferred
    assert res["delta_logp_rejected"].value < res["delta_logp_chosen"].value < 0
    assert res.details["mass_went_to"][0]["token"] == "Yes"
    assert after[0] > before[0]


def test_token_shift_of_a_model_against_itself_from_saved_weights():
    from alignlab.eval.model_eval import shift_from_models

    model, tok = tiny_model("llama", seed=3)
    res = shift_from_models(model, model, tok, ["say a", "say b"], max_new_tokens=5, seed=0)
    assert res["unshifted"].value == 1.0 and res["kl_aligned_base"].value == pytest.approx(0.0, abs=1e-12)
    lo, hi = res["unshifted"].interval  # Wilson: not degenerate at 100%
    assert lo < 1.0 and hi == pytest.approx(1.0)
