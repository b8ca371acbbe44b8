"""Administration in the browser: log in and out, create a collaboration, field errors from
the API on their fields, and a user without rights who neither sees nor reaches admin pages."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.fixtures.server import ServerProcess
from tests.ui.browser import PHONE, api_token, log_in, ui_url


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _post(server: ServerProcess, token: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{server.url}/{path}", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()


def test_keyboard_login_create_collaboration_and_logout(page: Any,
                                                        server: ServerProcess) -> None:
    """Log in with the keyboard, create a collaboration of three organizations, log out."""
    # Prepare
    root = api_token(server.url, "root", server.root_password)
    orgs = [_post(server, root, "organization", {"name": _unique("org")}) for _ in range(3)]
    name = _unique("collab")
    page.goto(ui_url(server.url) + "/")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("root")
    page.keyboard.press("Tab")
    page.keyboard.type(server.root_password)
    page.keyboard.press("Enter")
    # Execute
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collaborations").click()
    page.get_by_role("button", name="New collaboration").click()
    form = page.get_by_role("form", name="New collaboration")
    form.get_by_label("Name").fill(name)
    for org in orgs:
        form.get_by_label(org["name"]).check()
    form.get_by_role("button", name="Create").click()
    page.get_by_role("status").get_by_role("link", name=name).click()
    # Assert
    expect(page.get_by_role("heading", name=f"Collaboration: {name}")).to_be_visible()
    for org in orgs:
        expect(page.locator(".related").get_by_role("link", name=org["name"])).to_be_visible()
    listed = httpx.get(f"{server.url}/collaboration", params={"name": name}, timeout=30,
                       headers={"Authorization": f"Bearer {root}"}).json()["data"]
    assert len(listed) == 1
    in_api = httpx.get(f"{server.url}/organization", timeout=30,
                       params={"collaboration_id": listed[0]["id"]},
                       headers={"Authorization": f"Bearer {root}"}).json()["data"]
    assert sorted(o["id"] for o in in_api) == sorted(o["id"] for o in orgs)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("You are logged out.")).to_be_visible()


def test_api_field_errors_appear_on_their_field(page: Any, server: ServerProcess) -> None:
    """The server's 400 ``errors[].field`` is shown on that field, which gets the focus."""
    # Prepare
    log_in(page, ui_url(server.url), "root", server.root_password, "/users")
    page.get_by_role("button", name="New user").click()
    form = page.get_by_role("form", name="New user")
    form.get_by_label("Username").fill(_unique("user"))
    form.get_by_label("Password").fill("short")  # the server wants 8 or more
    # Execute
    form.get_by_role("button", name="Create").click()
    # Assert
    password = form.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_be_focused()
    error_id = password.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_contain_text("at least 8")


def test_user_without_rights_neither_sees_nor_reaches_admin_pages(
        page: Any, server: ServerProcess) -> None:
    """No admin links, /users says no access, and the API refuses the same user (403)."""
    # Prepare
    root = api_token(server.url, "root", server.root_password)
    org = _post(server, root, "organization", {"name": _unique("org")})
    username, password = _unique("nobody"), uuid.uuid4().hex
    _post(server, root, "user", {"username": username, "password": password,
                                 "organization_id": org["id"], "roles": []})
    token = api_token(server.url, username, password)
    # Execute
    log_in(page, ui_url(server.url), username, password)
    nav = page.get_by_role("navigation", name="Main")
    page.goto(ui_url(server.url) + "/users")
    # Assert
    expect(page.get_by_role("alert")).to_have_text("You do not have access to this page.")
    for label in ("Users", "Roles", "Organizations", "Collaborations", "Tasks"):
        expect(nav.get_by_role("link", name=label)).to_have_count(0)
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("organization", "collaboration", "node", "task"):
        refused = httpx.get(f"{server.url}/{path}", headers=headers, timeout=30)
        assert refused.status_code == 403, (path, refused.text)
    for path, body in (("user", {"username": _unique("u"), "password": uuid.uuid4().hex}),
                       ("organization", {"name": _unique("org")}),
                       ("role", {"name": _unique("role")})):
        refused = httpx.post(f"{server.url}/{path}", json=body, headers=headers, timeout=30)
        assert refused.status_code == 403, (path, refused.text)
    users = httpx.get(f"{server.url}/user", headers=headers, timeout=30).json()["data"]
    assert [u["username"] for u in users] == [username]  # only themselves


def test_phone_layout_folds_the_navigation_into_a_menu(browser: Any,
                                                      server: ServerProcess) -> None:
    """On a phone-sized screen the navigation opens from a Menu button (aria-expanded)."""
    # Prepare
    context = browser.new_context(viewport=PHONE)
    phone = context.new_page()
    log_in(phone, ui_url(server.url), "root", server.root_password, "/tasks")
    menu = phone.get_by_role("button", name="Menu")
    nodes = phone.get_by_role("navigation", name="Main").get_by_role("link", name="Nodes")
    expect(nodes).to_be_hidden()
    # Execute
    menu.click()
    # Assert
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nodes).to_be_visible()
    nodes.click()
    expect(phone.get_by_role("heading", name="Nodes")).to_be_visible()
    expect(nodes).to_be_hidden()
    context.close()


def test_edit_then_delete_an_organization(page: Any, server: ServerProcess) -> None:
    """Edit saves through PATCH; delete asks in a dialog, then the API no longer has it."""
    # Prepare
    root = api_token(server.url, "root", server.root_password)
    org = _post(server, root, "organization", {"name": _unique("org")})
    headers = {"Authorization": f"Bearer {root}"}
    log_in(page, ui_url(server.url), "root", server.root_password, f"/organizations/{org['id']}")
    # Execute
    page.get_by_role("button", name="Edit").click()
    form = page.get_by_role("form", name="Edit organization")
    form.get_by_label("Country").fill("Netherlands")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    country = httpx.get(f"{server.url}/organization/{org['id']}", headers=headers,
                        timeout=30).json()["country"]
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    # Assert
    assert country == "Netherlands"
    expect(page.get_by_role("heading", name="Organizations")).to_be_visible()
    gone = httpx.get(f"{server.url}/organization/{org['id']}", headers=headers, timeout=30)
    assert gone.status_code == 404


def test_registering_a_node_shows_its_api_key(page: Any, server: ServerProcess) -> None:
    """The API key of a new node is shown once, and it logs the node in."""
    # Prepare
    root = api_token(server.url, "root", server.root_password)
    orgs = [_post(server, root, "organization", {"name": _unique("org")}) for _ in range(2)]
    collab = _post(server, root, "collaboration", {"name": _unique("collab"),
                                                   "organization_ids": [o["id"] for o in orgs]})
    log_in(page, ui_url(server.url), "root", server.root_password, "/nodes")
    page.get_by_role("button", name="New node").click()
    form = page.get_by_role("form", name="New node")
    form.get_by_label("Collaboration").select_option(label=collab["name"])
    form.get_by_label("Organization").select_option(label=orgs[1]["name"])
    # Execute
    form.get_by_role("button", name="Create").click()
    # Assert
    key = page.get_by_test_id("api-key").inner_text()
    login = httpx.post(f"{server.url}/token/node", json={"api_key": key}, timeout=30)
    assert login.status_code == 200, login.text
