"""One step equal to TRL 1.16: GRPO (loss types grpo, dapo, dr_grpo, bnpo; β = 0 and 0.04) and RLOO.

TRL samples the completions itself (``_generate_and_score_completions``, its own rule-reward call and
advantages) and computes its loss (``_compute_loss``) and gradients. alignlab takes TRL's sampled token ids
as they are, computes the rewards with the same rule on their decoded text, then its own advantages
(``objectives.advantages``), log-probs through its engine (one packed row per prompt), its policy loss, KL
estimator and aggregation — and must give the same loss and the same gradients within 1e-5.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")

from alignlab.data.batching import make_batch  # noqa: E402
from alignlab.data.records import Record  # noqa: E402
from alignlab.data.tokenize import TokenizedGroup  # noqa: E402
from alignlab.models.tiny import tiny_model  # noqa: E402
from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs  # noqa: E402
from alignlab.objectives.kl_estimators import KL_ESTIMATORS, kl_penalised_rewards  # noqa: E402
from alignlab.objectives.loss_aggregation import AGGREGATIONS, LossNormalisers  # noqa: E402
from alignlab.objectives.policy_losses import POLICY_LOSSES  # noqa: E402
from alignlab.scoring.engine import Engine, Reference  # noqa: E402

pytestmark = pytest.mark.slow

PROMPTS = ["sort the list", "add one two", "tell a short story"]
K = 4
MAX_NEW = 8
# TRL's loss_type -> (alignlab aggregation, its hyper-parameters)
AGGREGATION_OF = {
    "grpo": ("seq_mean_token_mean", {}),
    "bnpo": ("token_mean", {}),
    "dapo": ("token_mean", {}),
    "dr_grpo": ("seq_mean_token_sum_norm", {"length_norm": MAX_NEW}),
}


def rule_reward(prompts, completions, **kwargs):
    """Distinct characters of the completion, /10: deterministic, varies within a group."""
    return [len(set(c)) / 10 for c in completions]


def _save(path, seed):
    model, tokenizer = tiny_model("llama", seed=seed)
    with (
        torch.no_grad()
    ):  # a larger EOS embedding makes EOS likely in some contexts: completions vary in length
        model.model.embed_tokens.weight[tokenizer.eos_token_id] *= 16
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("tiny") / "policy", seed=0)


@pytest.fixture(scope="module")
def reference_dir(model_dir):
    """A reference that differs from the policy, so the KL term has a value and a gradient at the first step."""
    return _save(model_dir.parent / "reference", seed=1)


def _load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa")


def trl_step(trainer_kind: str, model_dir, reference_dir, **config):
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    config_cls, trainer_cls = (
        (GRPOConfig, GRPOTrainer) if trainer_kind == "grpo" else (RLOOConfig, RLOOTrainer)
    )
    args = config_cls(
        output_dir=str(model_dir.parent / "trl-out"),
        per_device_train_batch_size=len(PROMPTS) * K,
        num_generations=K,
        max_completion_length=MAX_NEW,
        use_cpu=True,
        report_to="none",
        seed=0,
        bf16=False,
        **config,
    )
    torch.manual_seed(0)
    trainer = trainer_cls(
        model=str(model_dir),
        reward_funcs=rule_reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    if trainer.ref_model is not None:  # TRL builds its reference from the policy's path; give it ours
        trainer.ref_model.load_state_dict(_load(reference_dir).state_dict())
    trainer.current_gradient_accumulation_steps = 1  # set by the HF training loop, which we do not run
    trainer.model.train()
    inputs = trainer._generate_and_score_completions([{"prompt": p} for p in PROMPTS for _ in range(K)])
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return float(loss), grads, inputs


def alignlab_scores(model_dir, reference_dir, inputs):
    """Engine scores (policy with grad, reference without) of TRL's sampled ids, one packed row per prompt."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    policy = _load(model_dir)
    reference = _load(reference_dir).eval()
    policy.train()
    prompt_ids = [row[m.bool()].tolist() for row, m in zip(inputs["prompt_ids"], inputs["prompt_mask"])]
    completion_ids = [
        row[m.bool()].tolist() for row, m in zip(inputs["completion_ids"], inputs["completion_mask"])
    ]
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    groups, records = [], []
    for g in range(len(PROMPTS)):
        block = slice(g * K, (g + 1) * K)
        assert all(p == prompt_ids[g * K] for p in prompt_ids[block])
        groups.append(TokenizedGroup(prompt_ids[g * K], completion_ids[block], [[]] * K, [""] * K, g))
        records.append(Record(PROMPTS[g], texts[block]))
    batch = make_batch(records, groups, "packed", pad_id=tokenizer.pad_token_id)
    scores = Engine(layout="packed")(policy, batch, {"token_logps", "reference"}, Reference(reference))
    rewards = torch.tensor(rule_reward(None, texts)).view(len(PROMPTS), K)
    return policy, scores, rewards


def grads_of(model):
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(ours, theirs):
    assert ours.keys() == theirs.keys()
    worst = max((ours[n] - theirs[n]).abs().max().item() for n in ours)
    scale = max(theirs[n].abs().max().item() for n in theirs)
    assert scale > 1e-4  # the step moves the weights: the comparison is not between zeros
    assert worst < 1e-5, worst


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo", "bnpo"])
def test_grpo_one_step_equals_trl(model_dir, reference_dir, loss_type, beta):
    trl_loss, trl_grads, inputs = trl_step("grpo", model_dir, reference_dir, beta=beta, loss_type=loss_type)
    lengths = inputs["completion_mask"].sum(-1)
    assert lengths.min() < lengths.max()  # lengths vary, so the aggregations differ

    policy, scores, rewards = alignlab_scores(model_dir, reference_dir, inputs)
    advantages = ADVANTAGES("grpo", AdvantageInputs(rewards), scale="group", epsilon=1e-4).advantages
    torch.testing.assert_close(advantages.flatten(), inputs["advantages"], atol=1e-6, rtol=0)

    logps, mask = scores.token_logps, scores.token_mask
    old_logps = logps.detach()  # one update per rollout: TRL uses per_token_logps.detach()
    per_token, _ = POLICY_LOSSES("ppo_clip", logps, old_logps, advantages.flatten(), mask, epsilon=0.2)
    if beta:
        per_token = per_token + beta * KL_ESTIMATORS("k3_ratio", logps, scores.ref_token_logps, old_logps)
    name, params = AGGREGATION_OF[loss_type]
    normalisers = LossNormalisers.of(mask)  # one process, one micro-batch: the global batch is this one
    loss = AGGREGATIONS(name, per_token, mask, normalisers, **params)
    loss.backward()
    assert abs(loss.item() - trl_loss) < 1e-5
    assert_same_gradients(grads_of(policy), trl_grads)


@pytest.mark.parametrize("beta", [0.0, 0.05])
def test_rloo_one_step_equals_trl(model_dir, reference_dir, beta):
    trl_loss, trl_grads, inputs = trl_step("rloo", model_dir, reference_dir, beta=beta)
    policy, scores, rewards = alignlab_scores(model_dir, reference_dir, inputs)
    logps, mask = scores.token_logps, scores.token_mask
    old_logps = logps.detach()
    kl = KL_ESTIMATORS("k1", old_logps, scores.ref_token_logps, None).view(len(PROMPTS), K, -1)
    shaped = kl_penalised_rewards(rewards, kl, mask.view(len(PROMPTS), K, -1), beta, per_token=False)
    advantages = ADVANTAGES("rloo", AdvantageInputs(shaped)).advantages.flatten()
    torch.testing.assert_close(advantages, inputs["advantages"], atol=1e-6, rtol=0)
    per_token, _ = POLICY_LOSSES("sequence_clip", logps, old_logps, advantages, mask, epsilon=0.2)
    loss = AGGREGATIONS("seq_mean_token_mean", per_token, mask, None)
    loss.backward()
    assert abs(loss.item() - trl_loss) < 1e-5
    assert_same_gradients(grads_of(policy), trl_grads)
