"""Fixtures of the browser tests: one system Chromium per session, a fresh context per test.

The federation (server + 3 real nodes) comes from tests/fixtures/federation.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.browser import LAPTOP, launch_browser, watch


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the browser tests.

    Package-scoped, not session-scoped: Playwright's sync API keeps an event loop running in
    the main thread while it is open, and the asyncio tests that run after tests/ui need it
    gone.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no session) at laptop size; fails on page errors."""
    context = browser.new_context(viewport=LAPTOP)
    tab = context.new_page()
    problems = watch(tab)
    yield tab
    context.close()
    assert not problems.items, "the page reported problems:\n" + "\n".join(problems.items)
