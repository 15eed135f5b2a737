"""End to end in headless Chromium: an admin sets up a project on the admin page, two annotators label
pairs on the annotation page (keyboard and buttons), and the export holds their votes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from alignlab.app import store
from alignlab.app.db import Database
from tests.app.live_server import LiveServer
from tests.chromium import chromium, wait

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


_wait = wait


def _in_project_card(driver, field: str, text: str, button: str) -> bool:
    """Type ``text`` into the e2e project card's ``field`` and press its ``button``; False (try again) while the
    card is not there or the page re-drew it meanwhile (it does after creating a project and after an upload),
    so the element found a moment ago is gone."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        card = driver.find_element(By.CSS_SELECTOR, 'article[data-project="e2e"]')
        box = card.find_element(By.CSS_SELECTOR, field)
        if box.get_attribute("type") != "file":
            box.clear()
        box.send_keys(text)
        card.find_element(By.CSS_SELECTOR, button).click()
    except (NoSuchElementException, StaleElementReferenceException):
        return False
    return True


def test_admin_and_two_annotators_through_the_real_pages(browser, db_url, tmp_path):
    from selenium.webdriver.common.by import By

    db = Database(db_url)
    with db.session() as s:
        admin_token, _ = store.issue_token(s, "admin", timedelta(days=1))
    tasks = tmp_path / "tasks.jsonl"
    rows = [
        {"prompt": "Capital of France?", "completions": ["GOOD Paris", "BAD Lyon"], "id": "t0"},
        {"prompt": "2 + 2?", "completions": ["BAD 5", "GOOD 4"], "id": "t1"},
        {"prompt": "Say hi " + XSS, "completions": ["GOOD hi " + XSS, "BAD " + XSS], "id": "t2"},
    ]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with LiveServer(db) as server:
        d = browser
        d.get(f"{server.url}/admin#token={admin_token}")
        _wait(d, lambda d: d.find_element(By.ID, "admin").is_displayed())
        assert "token=" not in d.current_url  # the token leaves the address bar at once
        d.find_element(By.ID, "np-name").send_keys("e2e")
        d.find_element(By.ID, "np-per-task").clear()
        d.find_element(By.ID, "np-per-task").send_keys("2")
        d.find_element(By.ID, "np-create").click()
        _wait(d, lambda d: _in_project_card(d, ".upload-file", str(tasks), ".upload"))
        _wait(d, lambda d: "Added 3 tasks" in d.find_element(By.ID, "message").text)
        links = {}
        for name in ("alice", "bob"):
            _wait(d, lambda d, n=name: _in_project_card(d, ".invite-name", n, ".invite"))
            link = _wait(
                d, lambda d, n=name: d.find_elements(By.CSS_SELECTOR, f'.invite-link[data-name="{n}"]')
            )[0]
            links[name] = link.get_attribute("value")

        for name in ("alice", "bob"):
            d.get("about:blank")
            d.get(links[name])
            if name == "bob":
                d.set_window_size(375, 800)  # a phone-width screen
            _wait(d, lambda d: d.find_element(By.ID, "task").is_displayed())
            assert d.find_element(By.ID, "who").text == name
            labelled = 0
            while not d.find_element(By.ID, "finished").is_displayed():
                texts = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".completion-text")]
                prompt = d.find_element(By.ID, "prompt").text
                good = 0 if texts[0].startswith("GOOD") else 1
                if prompt.startswith("Say hi"):
                    # The payload is shown as text, not run or rendered.
                    assert XSS in prompt and any(XSS in t for t in texts)
                    assert d.find_elements(By.CSS_SELECTOR, "#task img, #task script") == []
                # bob prefers BAD on the 2 + 2 task; alice always picks GOOD.
                pick = 1 - good if (name == "bob" and prompt == "2 + 2?") else good
                if name == "alice":
                    d.find_element(By.TAG_NAME, "body").send_keys("1" if pick == 0 else "2")
                else:
                    d.find_element(By.ID, "choose-first" if pick == 0 else "choose-second").click()
                labelled += 1
                _wait(
                    d,
                    lambda d, n=labelled: d.find_element(By.ID, "progress-text").text.startswith(f"{n} done"),
                )
            assert labelled == 3
            assert d.execute_script("return window.__pwned === undefined")
            if name == "bob":
                assert d.execute_script(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1"
                )

    with db.session() as s:
        from alignlab.app.export import export_rows

        votes = {r["id"]: r for r in export_rows(s, store.project_by_name(s, "e2e"), "records", "all")}
    db.dispose()
    assert sorted(votes) == ["t0:alice", "t0:bob", "t1:alice", "t1:bob", "t2:alice", "t2:bob"]
    # GOOD is completion 0 of t0 and t2 and completion 1 of t1 (the uploaded order, not the shown one).
    assert votes["t0:alice"]["ranking"] == votes["t0:bob"]["ranking"] == [0, 1]
    assert votes["t1:alice"]["ranking"] == [1, 0] and votes["t1:bob"]["ranking"] == [0, 1]
    assert votes["t2:alice"]["ranking"] == votes["t2:bob"]["ranking"] == [0, 1]
    assert votes["t2:bob"]["completions"][0] == "GOOD hi " + XSS  # stored verbatim, only escaped on display
