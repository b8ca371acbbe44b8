"""How ``v6flow server start`` serves the web UI next to the API (server/v6flow_server/ui.py)."""

from __future__ import annotations

import httpx

from tests.fixtures.server import ServerProcess
from tests.ui.browser import ui_url


def test_client_routes_answer_index_html_with_a_strict_policy(server: ServerProcess) -> None:
    """A client-side route is index.html, revalidated, under a CSP without inline code."""
    # Execute
    response = httpx.get(f"{ui_url(server.url)}/tasks/12?x=1", timeout=10)
    # Assert
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/src/main.js">' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and "require-trusted-types-for 'script'" in policy
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_modules_are_javascript_and_revalidate_to_304(server: ServerProcess) -> None:
    """ES modules carry a JavaScript type and an ETag; a revalidation answers 304."""
    # Prepare
    url = f"{ui_url(server.url)}/src/main.js"
    first = httpx.get(url, timeout=10)
    # Execute
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]}, timeout=10)
    # Assert
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    assert again.status_code == 304


def test_the_api_keeps_its_own_404_and_405(server: ServerProcess) -> None:
    """Unknown API paths stay JSON 404s and a wrong method a 405, never the UI's page."""
    # Execute
    missing = httpx.get(f"{server.url}/no-such-route", timeout=10)
    wrong_method = httpx.post(f"{server.url}/health", timeout=10)
    # Assert
    assert missing.status_code == 404 and missing.json()["msg"]
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]


def test_only_ui_files_are_served(server: ServerProcess) -> None:
    """The vendoring script, missing assets, escapes from ui/ and other methods are 404."""
    # Prepare
    base = ui_url(server.url)
    # Execute
    answers = [httpx.get(f"{base}/vendor.sh", timeout=10).status_code,
               httpx.get(f"{base}/src/missing.js", timeout=10).status_code,
               httpx.get(f"{base}/%2e%2e/pyproject.toml", timeout=10).status_code,
               httpx.get(f"{base}/..%2Fserver%2Fui.py", timeout=10).status_code,
               httpx.post(f"{base}/tasks", timeout=10).status_code]
    # Assert
    assert answers == [404, 404, 404, 404, 404]
