"""TRL's ``lr_scheduler_type`` names (transformers' SchedulerType): each one alignlab takes gives the same
learning rate at every step as ``transformers.get_scheduler`` under that name; every other is refused with a
message naming it and the schedules alignlab has (no TRL needed: the names are transformers')."""

from __future__ import annotations

import pytest
import torch
from transformers import get_scheduler
from transformers.trainer_utils import SchedulerType

from alignlab.cli.trl_map import TrlArgumentError, parse_argv, translate
from alignlab.train.schedule import learning_rate_schedule
from tests.train.test_schedule import _rates


@pytest.mark.parametrize("trl_name", [s.value for s in SchedulerType])
def test_each_trl_schedule_is_the_same_multipliers_or_refused(trl_name: str) -> None:
    argv = ["--lr_scheduler_type", trl_name, "--warmup_steps", "3", "--max_steps", "8"]
    try:
        settings = dict(translate(parse_argv(argv)).settings)
    except TrlArgumentError as err:
        assert trl_name in str(err) and "no alignlab equivalent" in str(err)
        assert "constant_with_warmup, linear, cosine" in str(err)
        return
    name, warmup, total = settings["train.schedule"], settings["train.warmup_steps"], settings["train.steps"]
    ours_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    theirs_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ours = _rates(learning_rate_schedule(ours_opt, name, warmup, total), ours_opt, total + 1)
    theirs = _rates(get_scheduler(trl_name, theirs_opt, 3, 8), theirs_opt, total + 1)
    assert ours == pytest.approx(theirs, rel=0, abs=1e-15)


def test_the_mapped_names() -> None:
    taken = set()
    for s in SchedulerType:
        try:
            translate(parse_argv(["--lr_scheduler_type", s.value]))
            taken.add(s.value)
        except TrlArgumentError:
            pass
    assert taken == {"constant", "constant_with_warmup", "linear", "cosine"}
