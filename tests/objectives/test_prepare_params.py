"""Prepare hooks declare their own hyper-parameters: they join the objective's, the hook gets only its own,
the loss only its own, and a parameter declared twice must have one default."""

import pytest

from alignlab.data.records import Record
from alignlab.objectives import Objective, get
from alignlab.objectives.registry import Param, _prepare_params
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

    assert _prepare_params("demo", takes_all, {}) is None
