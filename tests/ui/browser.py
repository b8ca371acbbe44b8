"""Driving the web UI in headless Chromium (Debian's package) with Playwright for Python.

``playwright install`` downloads browsers, which this machine cannot: the tests use the system
browser at ``/usr/bin/chromium`` (``apt-get install chromium``, done by
``scripts/setup-machine.sh test``). A page records uncaught errors and Content-Security-Policy
violations (:func:`watch`); the ``page`` fixture (conftest.py) fails the test on any.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CHROMIUM_HINT = ("The UI tests need Debian's Chromium: `apt-get install -y chromium "
                 "chromium-driver` (scripts/setup-machine.sh test installs it).")
LAPTOP = {"width": 1366, "height": 820}
PHONE = {"width": 390, "height": 844}
#: How long to wait for federated work (container start, algorithm, report) to show.
SLOW_MS = 120_000


@dataclass
class PageProblems:
    """Uncaught errors and CSP violations a page reported."""

    items: list[str] = field(default_factory=list)

    def record(self, text: str) -> None:
        """Remember one problem."""
        self.items.append(text)


def launch_browser(playwright: Any) -> Any:
    """Headless system Chromium; fails with how to install it when it is missing."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(CHROMIUM_HINT, pytrace=False)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def watch(page: Any) -> PageProblems:
    """Record uncaught errors and console errors (CSP violations are console errors)."""
    problems = PageProblems()

    def on_console(message: Any) -> None:
        if message.type == "error" and not _expected_console_error(message.text):
            problems.record(f"console: {message.text}")

    page.on("pageerror", lambda error: problems.record(f"uncaught: {error}"))
    page.on("console", on_console)
    return problems


def _expected_console_error(text: str) -> bool:
    # The browser logs every refused request ("Failed to load resource: ... 401/403/400");
    # the UI shows those answers itself, which is what the tests assert.
    return text.startswith("Failed to load resource")


def ui_url(api_url: str) -> str:
    """The UI's address from the API's (``http://host:port/api`` → ``http://host:port``)."""
    return api_url.removesuffix("/").removesuffix("/api")


def log_in(page: Any, base: str, username: str, password: str, path: str = "/") -> None:
    """Open ``path``, log in through the form and wait for the logged-in frame."""
    from playwright.sync_api import expect

    page.goto(base + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def api_token(api_url: str, username: str, password: str) -> str:
    """An access token through the REST API."""
    response = httpx.post(f"{api_url}/token/user",
                          json={"username": username, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
