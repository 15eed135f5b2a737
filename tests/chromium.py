"""Headless Chromium for the tests that look at real pages (the feedback app, the quickstart report).

Debian's ``chromium`` and ``chromium-driver`` (scripts/ci_app_services.sh installs them) driven by selenium
(the dev extra); tests skip, saying which is missing, without them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _driver(user_dir: str) -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (scripts/ci_app_services.sh installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_dir}",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium webdriver in a throw-away profile."""
    user_dir = tempfile.mkdtemp(prefix="alignlab-chromium-")
    driver = _driver(user_dir)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(user_dir, ignore_errors=True)


def wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    """Poll ``condition(driver)`` until it is truthy (selenium's WebDriverWait); returns its value.

    A page that re-renders between finding an element and reading it raises a stale-element error;
    that is a moment of the page, not an answer, so polling goes on.
    """
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, ignored_exceptions=ignored).until(lambda d: condition(d))
