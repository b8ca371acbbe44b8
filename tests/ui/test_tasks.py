"""Tasks in the browser against a real federation (server + 3 nodes on Docker): create one for
three organizations and watch it complete live, read a result table and a log line, see a
running task's log grow, kill a long task, delete a task."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from playwright.sync_api import expect

from tests.fixtures.federation import Federation
from tests.ui.browser import SLOW_MS, log_in, ui_url

#: Records, in the page, every status a run badge showed (survives only without a reload).
RECORD_STATUSES = """() => {
  window.__seenStatuses = new Set();
  const note = () => document.querySelectorAll('.run-header .badge').forEach(
    (badge) => window.__seenStatuses.add(badge.dataset.status));
  new MutationObserver(note).observe(document.body,
    { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
}"""
UNFINISHED = {"pending", "initializing", "active"}


def _collaboration_name(federation: Federation) -> str:
    return str(federation.get(f"collaboration/{federation.collaboration_id}")["name"])


def test_task_for_three_organizations_completes_live(page: Any, federation: Federation) -> None:
    """Runs go from unfinished to completed in place; each shows a result table and its log."""
    # Prepare
    rows = [{"site": f"s{uuid.uuid4().hex[:4]}", "n": 1}, {"site": "other", "n": 2.5}]
    log_in(page, ui_url(federation.server_url), federation.username, federation.password,
           "/tasks")
    page.get_by_role("link", name="New task").click()
    form = page.get_by_role("form", name="New task")
    form.get_by_label("Collaboration").select_option(label=_collaboration_name(federation))
    for node in federation.nodes:
        form.get_by_label(node.organization_name).check()
    form.get_by_label("Name").fill(f"ui-{uuid.uuid4().hex[:6]}")
    form.get_by_label("Image").fill(federation.test_image)
    form.get_by_label("Method").fill("echo")
    arguments = form.get_by_label("Positional arguments")
    arguments.fill("[oops")
    expect(arguments).to_have_attribute("aria-invalid", "true")  # checked while typing
    arguments.fill(json.dumps([rows]))
    expect(arguments).to_have_attribute("aria-invalid", "false")
    page.evaluate(RECORD_STATUSES)
    # Execute
    form.get_by_role("button", name="Create task").click()
    # Assert
    runs = page.locator("article.run")
    expect(runs).to_have_count(3)
    expect(page.locator('.run-header .badge[data-status="completed"]')).to_have_count(
        3, timeout=SLOW_MS)
    seen = set(page.evaluate("[...window.__seenStatuses]"))
    assert seen & UNFINISHED, f"no unfinished status was ever shown: {seen}"
    expect(page.locator('.task-status .badge[data-status="completed"]')).to_be_visible()
    for index in range(3):
        run = runs.nth(index)
        table = run.locator(".result-table")
        expect(table.locator("th")).to_have_text(["site", "n"])
        expect(table.locator("tbody tr").first.locator("td")).to_have_text(
            [rows[0]["site"], "1"])
        expect(run.locator(".log")).to_contain_text("echo")


def test_kill_a_long_task(page: Any, federation: Federation) -> None:
    """Kill from the task page: the running run turns 'killed by user' without a reload."""
    # Prepare
    node = federation.nodes[0]
    task = federation.create_task("sleep", args=[600], organization_ids=[node.organization_id],
                                  name=f"ui-kill-{uuid.uuid4().hex[:6]}")
    log_in(page, ui_url(federation.server_url), federation.username, federation.password,
           f"/tasks/{task['id']}")
    run_badge = page.locator("article.run .run-header .badge")
    expect(run_badge).to_have_attribute("data-status", "active", timeout=SLOW_MS)
    # Execute
    page.get_by_role("button", name="Kill task").click()
    page.get_by_role("dialog").get_by_role("button", name="Kill").click()
    # Assert
    expect(run_badge).to_have_attribute("data-status", "killed by user")
    expect(page.get_by_role("button", name="Kill task")).to_have_count(0)
    runs = federation.wait_for_runs(task["id"], timeout=SLOW_MS / 1000)
    assert [r["status"] for r in runs] == ["killed by user"]


def test_a_running_log_grows_live_then_the_task_is_deleted(page: Any,
                                                           federation: Federation) -> None:
    """While the run is active, new log lines appear without a reload; once it ended, Delete
    task (confirmed) takes the user to the list, and the API no longer has the task."""
    # Prepare
    node = federation.nodes[0]
    task = federation.create_task("tick", args=[12, 0.5], organization_ids=[node.organization_id],
                                  name=f"ui-tick-{uuid.uuid4().hex[:6]}")
    log_in(page, ui_url(federation.server_url), federation.username, federation.password,
           f"/tasks/{task['id']}")
    run_badge = page.locator("article.run .run-header .badge")
    log = page.locator("article.run .log")
    # Execute: watch the log while the run is active
    expect(log).to_contain_text("tick 2", timeout=SLOW_MS)
    expect(run_badge).to_have_attribute("data-status", "active")
    expect(log).to_contain_text("tick 5")
    still_active = run_badge.get_attribute("data-status")
    expect(run_badge).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    page.get_by_role("button", name="Delete task").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    # Assert
    assert still_active == "active", "tick 5 should arrive while the run is still active"
    expect(page).to_have_url(re.compile(r"/tasks$"))
    assert federation.request("GET", f"task/{task['id']}").status_code == 404


def test_a_node_going_offline_and_back_shows_live(page: Any, federation: Federation) -> None:
    """The node page follows ``node_status``: offline when the node stops, online when it is
    back, without a reload."""
    # Prepare
    node = federation.nodes[-1]
    log_in(page, ui_url(federation.server_url), federation.username, federation.password,
           f"/nodes/{node.node_id}")
    badge = page.locator(".badge[data-status]").first
    expect(badge).to_have_attribute("data-status", "online", timeout=SLOW_MS)
    page.evaluate("window.__sameDocument = true")
    # Execute
    assert federation.stop_node(node) == 0
    try:
        expect(badge).to_have_attribute("data-status", "offline", timeout=SLOW_MS)
    finally:
        federation.start_node(node)
        federation.wait_online(node)
    # Assert
    expect(badge).to_have_attribute("data-status", "online", timeout=SLOW_MS)
    assert page.evaluate("window.__sameDocument === true")  # no reload happened


def test_a_task_in_a_study_runs_only_at_its_organizations(page: Any,
                                                          federation: Federation) -> None:
    """Choosing a study offers only its organizations; the task is stored in the study and
    runs at exactly the organizations picked from it."""
    # Prepare
    members = federation.nodes[:2]
    study = federation.request("POST", "study", json={
        "name": f"ui-study-{uuid.uuid4().hex[:6]}", "collaboration_id": federation.collaboration_id,
        "organization_ids": [n.organization_id for n in members]}).json()
    log_in(page, ui_url(federation.server_url), federation.username, federation.password,
           "/tasks/new")
    form = page.get_by_role("form", name="New task")
    form.get_by_label("Collaboration").select_option(label=_collaboration_name(federation))
    form.get_by_label("Study").select_option(label=study["name"])
    offered = form.get_by_role("group", name="Organizations").get_by_role("checkbox")
    expect(offered).to_have_count(len(members))
    for node in members:
        form.get_by_label(node.organization_name).check()
    form.get_by_label("Image").fill(federation.test_image)
    form.get_by_label("Method").fill("echo")
    form.get_by_label("Positional arguments").fill(json.dumps(["in a study"]))
    # Execute
    form.get_by_role("button", name="Create task").click()
    # Assert
    expect(page.locator('.task-status .badge[data-status="completed"]')).to_be_visible(
        timeout=SLOW_MS)
    task_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    task = federation.get(f"task/{task_id}")
    assert task["study"]["id"] == study["id"]
    runs = federation.get("run", task_id=task_id)["data"]
    assert sorted(r["organization"]["id"] for r in runs) == sorted(
        n.organization_id for n in members)
