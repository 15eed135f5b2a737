"""The admin page in headless Chromium: the annotators table keeps its invitation links across a reload,
statistics are tables and bar charts (no raw JSON), the status line does not go stale, and an annotator's
page counts the task in hand."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from alignlab.app import store
from alignlab.app.db import Database
from tests.app.conftest import pairs
from tests.app.live_server import LiveServer
from tests.chromium import chromium, wait

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


def _label_everything(url: str, token: str, good_for: set[str]) -> None:
    """Answer every task of the annotator holding ``token``: GOOD on prompts in ``good_for``, else BAD."""
    headers = {"Authorization": f"Bearer {token}"}
    while (task := httpx.get(f"{url}/api/next", headers=headers).json()["task"]) is not None:
        want = "GOOD" if task["prompt"][:2] in good_for else "BAD"
        choice = "first" if want in task["completions"][0] else "second"
        body = {
            "assignment_id": task["assignment_id"],
            "client_key": f"key-{task['assignment_id']:06d}-x",
            "choice": choice,
        }
        assert httpx.post(f"{url}/api/labels", json=body, headers=headers).status_code == 200


def test_admin_page_people_statistics_and_status_line(browser, tmp_path):
    from selenium.webdriver.common.by import By

    db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    with db.session() as s:
        admin_token, _ = store.issue_token(s, "admin", timedelta(days=1))
        project = store.create_project(s, "people", ["pairwise"], per_task=2)
        store.add_tasks(s, project, [store_record(r) for r in pairs(20)])
    d = browser
    with LiveServer(db) as server:
        d.get(f"{server.url}/admin#token={admin_token}")
        card = 'article[data-project="people"]'
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} .annotators"))
        assert "No annotators yet" in d.find_element(By.CSS_SELECTOR, f"{card} .annotators").text
        links = {}
        for name in ("alice", "bob"):
            box = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, f"{card} .invite-name"))
            box.send_keys(name)
            d.find_element(By.CSS_SELECTOR, f"{card} .invite").click()
            field = wait(
                d, lambda d, n=name: d.find_elements(By.CSS_SELECTOR, f'.invite-link[data-name="{n}"]')
            )
            links[name] = field[0].get_attribute("value")
            assert links[name].startswith(f"{server.url}/#token=alt_")
        # The status line reports the last action, then clears itself (never a stale "Invited ..." later).
        assert "Invited bob" in d.find_element(By.ID, "message").text
        wait(d, lambda d: d.find_element(By.ID, "message").text == "", timeout=15)

        # An annotator's first screen of a 20-task project: the task in hand counts as to go.
        d.get(links["alice"])
        wait(d, lambda d: d.find_element(By.ID, "progress-text").text == "0 done · 20 to go")

        for name, good in (("alice", {"q0", "q1", "q2", "q3"}), ("bob", {"q0", "q1"})):
            _label_everything(server.url, links[name].split("#token=")[1], good)

        # A reload keeps the links made in this tab, and lists both annotators with their labels.
        d.get(f"{server.url}/admin")
        rows = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} .annotator-list tbody tr"))
        listed = {r.get_attribute("data-annotator"): r.text for r in rows}
        assert sorted(listed) == ["alice", "bob"] and "20" in listed["alice"]
        for name in ("alice", "bob"):
            shown = d.find_element(By.CSS_SELECTOR, f'.invite-link[data-name="{name}"]').get_attribute(
                "value"
            )
            assert shown == links[name]

        # Statistics: tables and bars, not JSON. alice and bob disagree on q2 and q3 only (16 of 20 agree).
        stats = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} .annotator-stats tbody tr"))
        assert [r.text.split()[0] for r in stats] == ["alice", "bob"]
        agreement = d.find_element(By.CSS_SELECTOR, f"{card} table.agreement").text
        assert "Fleiss' kappa" in agreement and "Cohen's kappa" in agreement
        bias = d.find_element(By.CSS_SELECTOR, f"{card} table.position-bias").text
        assert "everyone" in bias and "alice" in bias
        widths = d.execute_script(
            "return [...document.querySelectorAll('.annotator-stats .bar-fill')].map(b => b.getBoundingClientRect().width)"
        )
        assert len(widths) == 4 and all(w > 0 for w in widths)  # labels and agreement bars, drawn
        page = d.find_element(By.CSS_SELECTOR, card).text
        assert "{" not in page and '"fleiss_kappa"' not in page
        assert d.find_elements(By.CSS_SELECTOR, f"{card} pre") == []

        # Another link for bob from the table.
        d.find_element(By.CSS_SELECTOR, f'{card} tr[data-annotator="bob"] .new-link').click()
        wait(
            d,
            lambda d: (
                d.find_element(By.CSS_SELECTOR, '.invite-link[data-name="bob"]').get_attribute("value")
                != links["bob"]
            ),
        )
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # no script error, no failed request (a favicon included)
    db.dispose()


def store_record(row: dict):
    from alignlab.data.records import Record

    return Record.from_dict(row, "test")
