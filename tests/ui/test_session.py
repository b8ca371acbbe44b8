"""Sessions in the browser: a bad access token is refreshed with the refresh token; a failed
refresh logs out with a message."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.fixtures.server import ServerProcess
from tests.ui.browser import log_in, ui_url

STORAGE_KEY = "v6flow.session"
#: Replace one token of the stored session (what an expired or revoked token looks like).
SPOIL = """([key, which]) => {
  const session = JSON.parse(sessionStorage.getItem(key));
  session[which] = 'not.a.token';
  sessionStorage.setItem(key, JSON.stringify(session));
}"""


def test_a_refused_access_token_is_refreshed(page: Any, server: ServerProcess) -> None:
    """After a reload with a refused access token the UI refreshes and stays logged in."""
    # Prepare
    log_in(page, ui_url(server.url), "root", server.root_password, "/roles")
    page.evaluate(SPOIL, [STORAGE_KEY, "access"])
    # Execute
    page.reload()
    # Assert
    expect(page.get_by_role("heading", name="Roles")).to_be_visible()
    expect(page.locator("#main").get_by_role("link", name="Root")).to_be_visible()
    stored = page.evaluate(f"JSON.parse(sessionStorage.getItem('{STORAGE_KEY}')).access")
    assert stored != "not.a.token"


def test_a_failed_refresh_logs_out_with_a_message(page: Any, server: ServerProcess) -> None:
    """When neither token is accepted the UI shows the login form saying the session expired."""
    # Prepare
    log_in(page, ui_url(server.url), "root", server.root_password, "/roles")
    page.evaluate(SPOIL, [STORAGE_KEY, "access"])
    page.evaluate(SPOIL, [STORAGE_KEY, "refresh"])
    # Execute
    page.reload()
    # Assert
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("Your session has expired. Please log in again.")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None
