"""People as judges through the real feedback-app server: output pairs posted to a project's judge queue, two
annotators vote in the app, the win rate comes back from their votes, and the agreement computed from the
exported votes equals the app's own Fleiss' kappa."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("fastapi")

from alignlab.app.db import Database  # noqa: E402
from alignlab.eval.human_eval import agreement, fetch_votes, human_win_rate  # noqa: E402
from alignlab.eval.registry import MetricError  # noqa: E402
from alignlab.judges.human import HumanJudge  # noqa: E402
from tests.app.conftest import Env  # noqa: E402
from tests.app.live_server import LiveServer  # noqa: E402


def test_human_win_rate_and_agreement_through_the_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    env = Env(url)
    project = env.project(name="eval", per_task=2)
    token = env.client.post(
        f"/api/admin/projects/{project['id']}/judge-token", json={}, headers=env.admin
    ).json()["token"]
    annotators = {"ann": env.invite(project["id"], "ann"), "bob": env.invite(project["id"], "bob")}
    prompts = [f"question {i}" for i in range(4)]
    model = [f"MODEL answer {i}" for i in range(4)]
    baseline = [f"BASE answer {i}" for i in range(4)]
    # ann prefers the model everywhere; bob prefers it on questions 0 and 1, the baseline on 2, a tie on 3.
    wants = {"ann": ["model"] * 4, "bob": ["model", "model", "base", "tie"]}
    db = Database(url)
    env.app.state.db = db
    result = {}
    with LiveServer(db) as server:
        judge = HumanJudge(server.url, token, wait_timeout=60, poll_every=0.05, on_timeout="nan")
        worker = threading.Thread(
            target=lambda: result.update(r=human_win_rate(judge, prompts, model, baseline))
        )
        worker.start()
        for name, who in annotators.items():
            for _ in range(4):
                deadline, task = time.monotonic() + 30, None
                while task is None and time.monotonic() < deadline:
                    task = env.next(who) or time.sleep(0.05)
                i = int(task["prompt"].split()[-1])
                want = wants[name][i]
                model_first = task["completions"][0].startswith("MODEL")
                choice = (
                    "tie" if want == "tie" else ("first" if (want == "model") == model_first else "second")
                )
                assert env.label(who, task, choice=choice).status_code == 200
        worker.join(timeout=60)
        judge.close()
        admin_token = env.admin["Authorization"].split()[1]
        votes = fetch_votes(server.url, admin_token, project["id"])
        with pytest.raises(MetricError, match="404"):
            fetch_votes(server.url, admin_token, 999)
    win = result["r"]["win_rate"]
    p = [1.0, 1.0, 0.5, 0.75]  # mean of the two votes per question (tie = ½)
    assert win.value == pytest.approx(100 * sum(p) / 4)
    stats = env.client.get(f"/api/admin/projects/{project['id']}/stats", headers=env.admin).json()
    agree = agreement(votes, rounds=50)
    assert agree["fleiss_kappa"].value == pytest.approx(stats["agreement"]["pairwise"]["fleiss_kappa"])
    assert agree["pairwise_agreement"].value == pytest.approx(2 / 4)
    db.dispose()
    env.close()
