"""train.schedule's LambdaLR against transformers' get_scheduler, computed here for every step."""

from __future__ import annotations

import pytest
import torch

from alignlab.train.schedule import learning_rate_schedule, schedule_multiplier


def _rates(scheduler: torch.optim.lr_scheduler.LRScheduler, optimizer: torch.optim.Optimizer, steps: int):
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("name", ["constant", "constant_with_warmup", "linear", "cosine"])
@pytest.mark.parametrize("warmup,total", [(0, 10), (3, 10), (5, 5), (0, 1), (4, 17)])
def test_rates_equal_transformers_get_scheduler(name: str, warmup: int, total: int) -> None:
    from transformers import get_scheduler

    def optimizer() -> torch.optim.Optimizer:
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=3e-4)

    ours_opt, theirs_opt = optimizer(), optimizer()
    ours = _rates(learning_rate_schedule(ours_opt, name, warmup, total), ours_opt, total + 2)
    theirs = _rates(get_scheduler(name, theirs_opt, warmup, total), theirs_opt, total + 2)
    assert ours == pytest.approx(theirs, rel=0, abs=1e-15)


def test_constant_with_warmup_equals_transformers_function_step_by_step() -> None:
    from transformers import get_constant_schedule_with_warmup

    for warmup, total in [(4, 9), (0, 3), (1, 2)]:
        ours = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        theirs = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        expected = _rates(get_constant_schedule_with_warmup(theirs, warmup), theirs, total + 2)
        got = _rates(learning_rate_schedule(ours, "constant_with_warmup", warmup, total), ours, total + 2)
        assert got == pytest.approx(expected, rel=0, abs=1e-15)
    f = schedule_multiplier("constant_with_warmup", 4, 9)
    assert [f(s) for s in range(7)] == [0, 0.25, 0.5, 0.75, 1, 1, 1]  # linear warm-up, then constant


def test_cosine_by_hand() -> None:
    f = schedule_multiplier("cosine", 2, 6)
    # warm-up 0, 1/2; then half a cosine over 4 steps: 1, (1+cos(pi/4))/2, 1/2, (1-cos(pi/4))/2, 0
    assert [f(s) for s in range(7)] == pytest.approx([0, 0.5, 1, 0.853553390593, 0.5, 0.146446609407, 0])


def test_unknown_schedule_names_the_field() -> None:
    with pytest.raises(ValueError, match="train.schedule"):
        schedule_multiplier("polynomial", 0, 10)
