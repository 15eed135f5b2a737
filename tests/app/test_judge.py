"""The human-judge queue through the HumanJudge client against a real server on loopback."""

from __future__ import annotations

import pytest

from alignlab.app.db import Database
from alignlab.judges.human import HumanJudge, HumanJudgeError
from tests.app.conftest import Env, pairs
from tests.app.live_server import LiveServer


def test_enqueue_poll_and_answers_once_all_votes_are_in(db_url):
    env = Env(db_url)
    p = env.project(name="judge", per_task=2)
    other = env.project(name="other")
    env.upload(p["id"], pairs(3, "upload-"))  # uploaded work waits behind the judge's pairs
    foreign = env.upload(other["id"], pairs(1))
    token = env.client.post(f"/api/admin/projects/{p['id']}/judge-token", json={}, headers=env.admin).json()[
        "token"
    ]
    a, b = env.invite(p["id"], "a"), env.invite(p["id"], "b")
    db = Database(db_url)
    env.app.state.db = db
    with LiveServer(db) as server, HumanJudge(server.url, token) as judge:
        first = judge.enqueue("Which is kinder?", "thank you", "go away")
        second, third = judge.enqueue_many([("q2", "x", "y"), ("q3", "u", "v")])
        assert judge.poll([first, second, third]) == {first: None, second: None, third: None}
        # Annotator a prefers text a of all three pairs; b answers two of them: a, then a tie.
        text_a = {first: "thank you", second: "x", third: "u"}
        seen_by_b = []
        for who, answers in ((a, ["a", "a", "a"]), (b, ["a", "tie"])):
            for want in answers:
                task = env.next(who)
                assert not task["prompt"].startswith("upload-")  # judge pairs come first
                shown_a_first = task["completions"][0] == text_a[task["task_id"]]
                choice = "tie" if want == "tie" else ("first" if shown_a_first else "second")
                assert env.label(who, task, choice=choice).status_code == 200
                if who is b:
                    seen_by_b.append(task["task_id"])
        unseen = ({first, second, third} - set(seen_by_b)).pop()
        # Two votes for a: 1.0; a vote for a and a tie: (1 + 1/2) / 2; one vote of the two asked for: None.
        assert judge.poll([first, second, third]) == {seen_by_b[0]: 1.0, seen_by_b[1]: 0.75, unseen: None}
        assert judge.wait([seen_by_b[0]], timeout=1) == {seen_by_b[0]: 1.0}
        with pytest.raises(HumanJudgeError, match="404"):
            judge.poll(foreign)
    with pytest.raises(HumanJudgeError, match="401"):
        with LiveServer(db) as server:
            HumanJudge(server.url, "alt_wrong").poll([first])
    db.dispose()
    env.close()


def test_human_judge_is_a_judge_built_from_config_and_waits_for_votes(db_url, monkeypatch):
    """``prefer_many`` queues the pairs and returns P(a ≻ b) from the votes: 1 for a vote for a, ½ for a tie."""
    import threading
    import time

    from alignlab.judges.build import build_judge

    env = Env(db_url)
    p = env.project(name="judge-protocol", per_task=1)
    token = env.client.post(f"/api/admin/projects/{p['id']}/judge-token", json={}, headers=env.admin).json()[
        "token"
    ]
    annotator = env.invite(p["id"], "a")
    db = Database(db_url)
    env.app.state.db = db
    monkeypatch.setenv("ALIGNLAB_JUDGE_TOKEN", token)
    result = {}
    with LiveServer(db) as server:
        judge = build_judge({"name": "human", "url": server.url, "poll_every": 0.05, "wait_timeout": 60})
        worker = threading.Thread(
            target=lambda: result.update(p=judge.prefer_many(["q1", "q2"], ["good", "fine"], ["bad", "meh"]))
        )
        worker.start()
        wants = {"q1": "a", "q2": "tie"}
        for _ in range(2):
            deadline, task = time.monotonic() + 30, None
            while task is None and time.monotonic() < deadline:
                task = env.next(annotator) or time.sleep(0.05)  # the judge's pairs arrive from its thread
            shown_a_first = task["completions"][0] in ("good", "fine")
            want = wants[task["prompt"]]
            choice = "tie" if want == "tie" else ("first" if shown_a_first else "second")
            assert env.label(annotator, task, choice=choice).status_code == 200
        worker.join(timeout=60)
        judge.close()
    assert result["p"].tolist() == [1.0, 0.5]
    db.dispose()
    env.close()
