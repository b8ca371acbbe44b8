"""Tasks and their Prefect flow runs, both ways: the task page links the flow run (at the
address the server announces in ``GET /api/ui/config``, or at each person's own), and the flow
run's status table links (v6flow.prefect.reporting.task_link) land on the task's page."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.fixtures.server import ServerProcess, start_server
from tests.ui.browser import api_token, log_in, ui_url
from v6flow.wire import input_to_wire, make_input
from v6flow_server.settings import ServerSettings

PREFECT_UI = "https://prefect.example.org/base"


@dataclass
class FlowTask:
    """A server with a Prefect UI address, and a task recorded as made by a flow run."""

    server: ServerProcess
    task_id: int
    task_name: str
    flow_run_id: str


@pytest.fixture(scope="module")
def flow_task(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowTask]:
    """A server started with ``prefect_ui_url``; root creates a task naming a flow run."""
    directory = tmp_path_factory.mktemp("ui-prefect")
    server = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                          root_password=secrets.token_urlsafe(12), log_dir=directory,
                          extra_env={"V6FLOW_SERVER_PREFECT_UI_URL": PREFECT_UI + "/"})
    headers = {"Authorization": f"Bearer {api_token(server.url, 'root', server.root_password)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        user = api.get("/user", params={"username": "root"}).json()["data"][0]
        collaboration = api.post("/collaboration", json={
            "name": f"flows-{uuid.uuid4().hex[:6]}", "encrypted": False,
            "organization_ids": [user["organization"]["id"]]}).json()
        api.post("/node", json={"organization_id": user["organization"]["id"],
                                "collaboration_id": collaboration["id"]})  # never started
        flow_run_id, name = str(uuid.uuid4()), f"from-a-flow-{uuid.uuid4().hex[:6]}"
        created = api.post("/task", json={
            "name": name, "image": "v6flow-test/basic:latest",
            "collaboration_id": collaboration["id"], "flow_run_id": flow_run_id,
            "organizations": [{"id": user["organization"]["id"],
                               "input": input_to_wire(make_input("echo", [1]))}]})
        assert created.status_code == 201, created.text
    yield FlowTask(server, created.json()["id"], name, flow_run_id)
    server.stop()


def _flow_link(page: Any) -> Any:
    return page.get_by_role("link", name="Open flow run")


def test_the_task_page_links_the_flow_run_at_the_server_s_prefect_ui(
        page: Any, flow_task: FlowTask) -> None:
    """Without a setting of its own, the browser uses the address the server announces."""
    # Execute
    log_in(page, ui_url(flow_task.server.url), "root", flow_task.server.root_password,
           f"/tasks/{flow_task.task_id}")
    # Assert
    expect(_flow_link(page)).to_have_attribute(
        "href", f"{PREFECT_UI}/runs/flow-run/{flow_task.flow_run_id}")


def test_a_person_s_own_prefect_address_wins(page: Any, flow_task: FlowTask) -> None:
    """The address set on the account page (this browser only) replaces the server's."""
    # Prepare
    own = "http://127.0.0.1:4200"
    log_in(page, ui_url(flow_task.server.url), "root", flow_task.server.root_password,
           "/account")
    expect(page.get_by_text(f"Leave it empty to use the server's: {PREFECT_UI}")).to_be_visible()
    # Execute
    page.get_by_role("textbox", name="Prefect UI address").fill(own + "/")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    page.goto(f"{ui_url(flow_task.server.url)}/tasks/{flow_task.task_id}")
    # Assert
    expect(_flow_link(page)).to_have_attribute(
        "href", f"{own}/runs/flow-run/{flow_task.flow_run_id}")


def test_the_ui_config_is_for_logged_in_users(flow_task: FlowTask) -> None:
    """``GET /api/ui/config`` answers 401 without a token, the address with one."""
    # Prepare
    url = f"{flow_task.server.url}/ui/config"
    token = api_token(flow_task.server.url, "root", flow_task.server.root_password)
    # Execute
    anonymous = httpx.get(url, timeout=10)
    answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    # Assert
    assert anonymous.status_code == 401
    assert answer.status_code == 200
    assert answer.json() == {"prefect_ui_url": PREFECT_UI, "password_min_length":
                             ServerSettings.model_fields["password_min_length"].default}


def test_a_flow_run_s_task_link_opens_the_task_page(page: Any, flow_task: FlowTask) -> None:
    """The link of a flow run's status table (V6FLOW_UI_URL set) is the UI's task route."""
    # Prepare
    from v6flow.prefect.reporting import task_link

    base = ui_url(flow_task.server.url)
    link = task_link(flow_task.server.url, flow_task.task_id, ui_url=base + "/")
    # Execute
    log_in(page, base, "root", flow_task.server.root_password, link.removeprefix(base))
    # Assert
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Task {flow_task.task_id}: {flow_task.task_name}")
