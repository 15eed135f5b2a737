"""``build_judge``: judges from config specs, nested specs, dotted-path functions, and the errors users see.

Expected values are computed here by hand (plain Python over the same inputs, numpy for the ensemble, a
plain forward pass of the saved reward model's backbone and head); none is read back from the judge.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab.judges.base import JudgeBatch
from alignlab.judges.build import build_judge, buildable_judges
from alignlab.judges.registry import JudgeConfigError, all_judges
from alignlab.models.reward import RewardModel
from alignlab.models.tiny import tiny_tokenizer

TOK = tiny_tokenizer()

RULES = """
def vowels(prompt, completion):
    return float(sum(ch in "aeiou" for ch in completion))

def length(prompt, completion):
    return float(len(completion)) - len(prompt)

def named(prompt, completion):
    return {"words": float(len(completion.split())), "bang": float("!" in completion)}

def accuracy(prompts, completions, completion_ids, solution, step, **kwargs):
    return [None if s is None else float(c == s) + 0.01 * step + 0.001 * len(i)
            for c, s, i in zip(completions, solution, completion_ids)]

def only_completions(completions):
    return [float(len(c)) for c in completions]

def needs_missing_column(completions, answer):
    return [0.0 for _ in completions]
"""


@pytest.fixture()
def rules(tmp_path):
    path = tmp_path / "my_rules.py"
    path.write_text(RULES)
    return str(path)


def test_nested_ensemble_of_rules_from_a_file_takes_the_worst_member(rules):
    judge = build_judge(
        {
            "name": "rm_ensemble",
            "mode": "min",
            "members": [
                {"name": "rule", "function": f"{rules}:vowels"},
                {"name": "rule", "function": f"{rules}:length"},
            ],
        }
    )
    prompts, completions = ["ab", "q", "long prompt"], ["banana", "xyz", "aeiou"]
    vowels = [3.0, 0.0, 5.0]
    length = [6 - 2, 3 - 1, 5 - 11]
    assert np.allclose(judge.score(prompts, completions).numpy(), np.minimum(vowels, length))


def test_rule_with_named_attributes_and_an_importable_module(rules, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(tmp_path))
    judge = build_judge({"name": "rule", "function": "my_rules:named", "attributes": ["bang", "words"]})
    got = judge.score(["q", "q"], ["hi there!", "no"]).numpy()
    assert np.array_equal(got, [[1.0, 2.0], [0.0, 1.0]]) and judge.attribute_names == ["bang", "words"]
    judge.score(["q"], ["x"])
    assert judge.attribute_names == ["bang", "words"]  # scoring does not rewrite the judge


def test_reward_function_gets_ids_columns_and_step(rules):
    judge = build_judge({"name": "reward_function", "function": f"{rules}:accuracy"})
    batch = JudgeBatch(
        prompts=["add 2 3", "add 2 3", "add 1 1"],
        completions=["5", "6", "2"],
        completion_ids=[[7, 2], [9, 4, 2], [3]],
        columns={"solution": ["5", "5", None]},
        step=3,
    )
    got = judge.score_batch(batch).numpy()
    assert got[0] == pytest.approx(1.0 + 0.03 + 0.002)
    assert got[1] == pytest.approx(0.0 + 0.03 + 0.003)
    assert math.isnan(got[2])  # None: not scored, as in TRL
    # A function that names only what it reads receives only that.
    short = build_judge({"name": "reward_function", "function": f"{rules}:only_completions"})
    assert short.score(["p", "p"], ["abc", "de"]).tolist() == [3.0, 2.0]
    with pytest.raises(ValueError, match=r"takes \['answer'\] but no record column is named so"):
        build_judge({"name": "reward_function", "function": f"{rules}:needs_missing_column"}).score(
            ["p"], ["c"]
        )
    with pytest.raises(ValueError, match="clash"):
        short.score_batch(JudgeBatch(["p"], ["c"], columns={"step": [1]}))


def test_a_python_callable_is_a_reward_function_and_a_judge_passes_through():
    judge = build_judge(lambda completions, **kw: [float(c.count("a")) for c in completions])
    assert judge.score(["p", "p"], ["aa", "b"]).tolist() == [2.0, 0.0]
    assert build_judge(judge) is judge


def test_reward_model_by_path_inside_an_ensemble_with_a_rule(tmp_path, rules):
    model = RewardModel.from_base("tiny:llama", seed=3)
    model.save_pretrained(tmp_path / "rm" / "model")
    TOK.save_pretrained(tmp_path / "rm" / "model")
    judge = build_judge(
        {
            "name": "rm_ensemble",
            "members": [
                {"name": "reward_model", "path": str(tmp_path / "rm")},
                {"name": "rule", "function": f"{rules}:vowels"},
            ],
        }
    )
    prompts, completions = ["say hello", "count"], ["hello", "one two"]
    by_hand = []
    for p, c in zip(prompts, completions):
        ids = TOK(p, add_special_tokens=True)["input_ids"] + TOK(c, add_special_tokens=False)["input_ids"]
        ids = ids + [TOK.eos_token_id]
        with torch.no_grad():
            h = model.backbone(input_ids=torch.tensor([ids])).last_hidden_state[0, -1].double().numpy()
        w, b = model.reward_head.weight.detach().double().numpy(), model.reward_head.bias.detach().double()
        by_hand.append(float(h @ w[0] + b[0]))
    vowels = [2.0, 3.0]  # e o | o e o
    assert np.allclose(judge.score(prompts, completions).numpy(), (np.array(by_hand) + vowels) / 2, atol=1e-5)


def test_simulated_annotators_from_config_annotate_the_callers_world():
    from alignlab.sim.worlds import TextWorld, WorldConfig

    world = TextWorld(WorldConfig(seed=1))
    judge = build_judge({"name": "simulated", "annotators": {"temperature": 0}}, world=world)
    # Gold weights: correct 1, polite 0.5, safe 1, verbosity −0.25 per filler word (sim/worlds.py).
    got = judge.score(["add 2 3", "add 2 3"], ["sure , 5", "6 really"]).tolist()
    assert got == pytest.approx([1.0 + 0.5 + 1.0, 0.0 + 0.0 + 1.0 - 0.25])
    assert judge.settings.temperature == 0
    # Nested: the context reaches the members.
    pool = build_judge({"name": "rm_ensemble", "members": ["simulated", "simulated"]}, world=world)
    assert pool.score(["add 2 3"], ["5"]).tolist() == pytest.approx([2.0])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"name": "rewrd_model", "path": "x"},
            r"online\.judge: unknown judge 'rewrd_model'\. Did you mean: reward_model",
        ),
        (
            {
                "name": "rm_ensemble",
                "members": [{"name": "rule", "function": "os:getcwd"}, {"name": "rule", "functon": "m:f"}],
            },
            r"online\.judge\.members\[1\]\.functon: judge 'rule' has no setting 'functon'\. Did you mean 'function'\?",
        ),
        ({"name": "rm_ensemble", "members": []}, r"online\.judge\.members: List should have at least 1 item"),
        (
            {"name": "rm_ensemble", "mode": "max", "members": ["simulated"]},
            r"online\.judge\.mode: Input should be",
        ),
        (
            {"name": "rule", "function": "os:pathh"},
            r"online\.judge\.function: 'os' has no 'pathh'\. Did you mean: path",
        ),
        ({"name": "rule", "function": "no_colon"}, r"expected 'module:function'"),
        ({"name": "rule", "function": "no_such_module_xyz:f"}, r"cannot import module 'no_such_module_xyz'"),
        ({"name": "armorm"}, r"judge 'armorm' is built in Python"),
        ({"path": "runs/rm"}, r"online\.judge: a judge spec needs 'name'"),
        ({"name": "reward_model"}, r"online\.judge\.path: judge 'reward_model' needs this setting"),
        (
            {"name": "simulated", "annotators": {"temprature": 1}},
            r"online\.judge\.annotators\.temprature: .*Did you mean 'temperature'\?",
        ),
        ({"name": "simulated"}, r"online\.judge: judge 'simulated' needs a world to annotate"),
        (
            {"name": "human", "url": "http://x", "token_env": "ALIGNLAB_NO_SUCH_VAR"},
            r"ALIGNLAB_NO_SUCH_VAR holds no",
        ),
        (3, r"online\.judge: expected a judge name or a mapping"),
    ],
)
def test_bad_specs_name_the_place_and_the_fix(spec, message):
    with pytest.raises(JudgeConfigError, match=message):
        build_judge(spec, "online.judge")


def test_every_module_registers_itself_and_the_buildable_ones_list_their_settings():
    names = {s.name for s in all_judges()}
    assert {"reward_function", "simulated", "human", "rule", "rm_ensemble"} <= names
    assert set(buildable_judges()) == {
        "bleuberi",
        "gpm",
        "human",
        "implicit_reward",
        "reward_function",
        "reward_model",
        "rlaif",
        "rm_ensemble",
        "rm_ensemble_conservative",
        "rule",
        "simulated",
        "token_reward_function",
        "verifiable_answer",
    }
    described = {s.name: s.describe() for s in all_judges()}
    assert described["reward_model"]["config"]["batch_size"] == 16 and described["armorm"]["config"] is None


def test_judges_without_context_build_from_a_plain_spec():
    # from_settings takes the caller's context even when a judge ignores it (verifiable_answer was unbuildable)
    from alignlab.judges.base import JudgeBatch

    judge = build_judge({"name": "verifiable_answer", "match": "last_number"}, "online.judge")
    batch = JudgeBatch(["1+1="], ["it is 2"], columns={"answer": ["2"]})
    assert judge.score_batch(batch).tolist() == [1.0]
    dense = build_judge(
        {"name": "token_reward_function", "function": "tests.train._online:first_id_parity_split"}
    )
    assert type(dense).__name__ == "TokenRewardFunctionJudge"
