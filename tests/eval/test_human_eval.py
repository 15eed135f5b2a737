"""People as judges through the real feedback-app server: output pairs posted to a project's judge queue, two
annotators vote in the app, the win rate comes back from their votes, and the agreement computed from the
exported votes equals the app's own Fleiss' kappa."""

from __future__ import annotations

import threading
import time

import numpy as np
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


def test_eval_humans_command_through_the_server(tmp_path, capsys, monkeypatch):
    import json

    from alignlab.cli import main

    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    env = Env(url)
    project = env.project(name="cli", per_task=2)
    token = env.client.post(
        f"/api/admin/projects/{project['id']}/judge-token", json={}, headers=env.admin
    ).json()["token"]
    who = [env.invite(project["id"], name) for name in ("ann", "bob")]
    prompts = ["q0", "q1", "q2"]
    for name, prefix in (("m.jsonl", "MODEL"), ("b.jsonl", "BASE")):
        (tmp_path / name).write_text(
            "".join(json.dumps({"prompt": p, "output": f"{prefix} {p}"}) + "\n" for p in prompts)
        )
    monkeypatch.setenv("ALIGNLAB_JUDGE_TOKEN", token)
    monkeypatch.setenv("ALIGNLAB_ADMIN_TOKEN", env.admin["Authorization"].split()[1])
    db = Database(url)
    env.app.state.db = db
    with LiveServer(db) as server:
        args = ["eval", "humans", "--url", server.url, "--project", str(project["id"]), "--model",
                str(tmp_path / "m.jsonl"), "--baseline", str(tmp_path / "b.jsonl"), "--wait", "60", "--json"]  # fmt: skip
        worker = threading.Thread(target=lambda: main(args))
        worker.start()
        for annotator in who:  # both prefer the model everywhere
            for _ in range(3):
                deadline, task = time.monotonic() + 30, None
                while task is None and time.monotonic() < deadline:
                    task = env.next(annotator) or time.sleep(0.05)
                choice = "first" if task["completions"][0].startswith("MODEL") else "second"
                assert env.label(annotator, task, choice=choice).status_code == 200
        worker.join(timeout=90)
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"]["winrate"]["estimates"]["win_rate"]["value"] == 100.0
    assert out["metrics"]["agreement"]["estimates"]["pairwise_agreement"]["value"] == 1.0
    # Both annotators agree on every pair: kappa = 1 (the pairs were posted in random order, so the votes
    # fall in both completion categories and chance agreement is below 1).
    assert out["metrics"]["agreement"]["estimates"]["fleiss_kappa"]["value"] == pytest.approx(1.0)
    db.dispose()
    env.close()


def test_kappa_by_hand_and_undefined_kappa():
    from alignlab.eval.human_eval import fleiss_kappa

    # Fleiss (1971) formula on a 3-item table: P_i = (Σ n² − n)/(n(n − 1)).
    table = np.array([[2, 0, 0, 0], [1, 1, 0, 0], [0, 2, 0, 0]], dtype=float)
    p_i = np.array([1.0, 0.0, 1.0])
    p_j = np.array([3, 3, 0, 0]) / 6
    assert fleiss_kappa(table) == pytest.approx((p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum()))
    votes = [{"ranking": [0, 1], "meta": {"task_id": t}} for t in (1, 1, 2, 2)]
    res = agreement(votes, rounds=10)
    assert "fleiss_kappa" not in res.estimates and "undefined" in res.notes[0]
