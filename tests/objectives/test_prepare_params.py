"""Prepare hooks declare their own hyper-parameters: they join the objective's, the hook gets only its own,
the loss only its own, and a parameter declared twice must have one default."""

import inspect

import pytest

from alignlab.data.records import Record
from alignlab.objectives import Objective, get
from alignlab.objectives.registry import Param, _prepare_params, all_specs
from alignlab.train.data import prepare_records


def test_hook_parameters_join_the_objective_and_reach_only_the_hook():
    raft = get("raft")
    assert "score_key" in raft.params and "score_key" not in raft.loss_params
    assert raft.prepare_kwargs({"score_key": "len", "normalize": "tokens"}) == {"score_key": "len"}
    assert raft.loss_kwargs({"score_key": "len", "normalize": "tokens"}) == {"normalize": "tokens"}
    record = Record("p", ["a", "bbb"], scores=[{"len": 1.0, "q": 9.0}, {"len": 3.0, "q": 0.0}])
    by_length = prepare_records([record], Objective.from_config({"name": "raft", "score_key": "len"}))
    by_quality = prepare_records([record], Objective.from_config({"name": "raft", "score_key": "q"}))
    assert by_length[0].completions == ["bbb"] and by_quality[0].completions == ["a"]
    with pytest.raises(ValueError, match="no hyper-parameter 'score_kee'"):
        Objective.from_config({"name": "raft", "score_kee": "len"})


def test_a_parameter_declared_twice_needs_one_default():
    def hook(records, template: str = "x", shots: int = 4):
        return records

    params = {"beta": Param("beta", 0.1, "float"), "template": Param("template", "x", "str")}
    assert _prepare_params("demo", hook, params) == {"template", "shots"}
    assert params["shots"].default == 4
    params = {"shots": Param("shots", 2, "int")}
    with pytest.raises(ValueError, match="declare it once"):
        _prepare_params("demo", hook, params)

    def takes_all(records, **kwargs):
        return records

    with pytest.raises(ValueError, match=r"takes \*\*kwargs; declare each hyper-parameter"):
        _prepare_params("demo", takes_all, {})


def test_every_prepare_hook_receives_exactly_what_it_declares():
    hooks = [s for s in all_specs() if s.prepare is not None]
    assert len(hooks) >= 24
    for spec in hooks:
        declared = list(inspect.signature(spec.prepare).parameters)[1:]
        kinds = {p.kind for p in inspect.signature(spec.prepare).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, spec.name
        assert spec.prepare_kwargs(spec.check_params({})).keys() == set(declared), spec.name
        # a parameter only the hook reads is declared once, by the hook, not repeated by the loss
        assert set(declared) & spec.loss_params <= {"use_kl"}, spec.name


# The hyper-parameters users can set did not change when the hooks took over their own (before: the loss
# repeated them); defaults written out from the catalog as it was.
BEFORE = {
    "csft": {"good_token": "<|good|>", "bad_token": "<|bad|>", "normalize": "tokens"},
    "cut": {"threshold": 1.1, "unlikelihood_weight": 1.0,
            "judgement_template": "\n\n### Judgment:\n{judgement}\n\n### Response:\n"},
    "kto": {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0, "use_kl": True},
    "t_reg": {"beta": 0.1, "alpha": 1.0,
              "better_prompt": "(Give the most helpful, honest and harmless answer.)\n",
              "worse_prompt": "(Give an unhelpful, dishonest or harmful answer.)\n"},
    "fspo_fewshot_pm": {"shots": 4},
    "more": {"task_field": "source", "alpha": 1.0, "normalize": "none"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_settable_hyper_parameters_unchanged(name):
    assert {n: p.default for n, p in get(name).params.items()} == BEFORE[name]


def test_a_hook_only_parameter_reaches_the_hook():
    record = Record("Q", ["good", "bad"], ranking=[0, 1])
    out = prepare_records([record], Objective.from_config({"name": "csft", "good_token": "<G>"}))
    assert [(r.completions, r.context_prefixes) for r in out] == [(["good"], ["<G>"]), (["bad"], ["<|bad|>"])]
    kto = Objective.from_config({"name": "kto", "use_kl": False})
    labelled = [Record("a", ["x"], labels=[True]), Record("b", ["y"], labels=[False])]
    assert prepare_records(labelled, kto) == labelled  # use_kl: false reaches the hook: no "kl" completion


def test_functional_api_passes_the_loss_only_its_own_parameters():
    """reward_augmented_relabel's score_template belongs to its hook; the loss is DPO: -log σ(β(ρ_w - ρ_l))."""
    import math

    import torch

    from alignlab.objectives.functional import pairwise_loss

    loss = pairwise_loss(
        "reward_augmented_relabel", torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]),
        torch.tensor([-2.5]), beta=0.5, score_template="[{score}]",
    )  # fmt: skip
    margin = 0.5 * ((-1.0 + 2.0) - (-3.0 + 2.5))
    assert float(loss[0]) == pytest.approx(math.log1p(math.exp(-margin)))
