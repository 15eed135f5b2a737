"""online.judge must score single completions: a judge that only gives preferences (``human``, ``rlaif``,
``pair_pm``, ...) is refused when the run is set up, with a message naming online.judge and where such a
judge does serve, instead of failing at the first rollout."""

from __future__ import annotations

import pytest

from alignlab.config import ConfigError, OnlineSettings
from alignlab.judges.base import Judge
from alignlab.judges.human import HumanJudge
from alignlab.judges.registry import all_judges
from alignlab.train.online_setup import build_online_judge


def test_the_human_judge_is_refused_as_an_online_judge(monkeypatch):
    monkeypatch.setenv("ALIGNLAB_JUDGE_TOKEN", "not-a-real-token")  # no request is made
    settings = OnlineSettings(judge={"name": "human", "url": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError) as err:
        build_online_judge(settings)
    message = str(err.value)
    assert message.startswith("online.judge: 'human' gives preferences") and "eval policies" in message
    with pytest.raises(NotImplementedError):  # what the trainer would have hit at its first rollout
        HumanJudge("http://127.0.0.1:9", "t").score(["p"], ["c"])


def test_a_scoring_judge_is_built():
    judge = build_online_judge(OnlineSettings(judge={"name": "verifiable_answer"}))
    assert isinstance(judge, Judge)


def test_the_refusal_matches_each_judges_registered_kind():
    from alignlab.train.online_setup import _gives_scores

    for spec in all_judges():
        judge = spec.cls.__new__(spec.cls)  # the check reads the class only; no model is loaded
        assert _gives_scores(judge) == (spec.kind == "scores"), spec.name
