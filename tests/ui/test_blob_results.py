"""Results in the blob store, in the browser, against a server with a local store and a real
node: small ones are fetched (with the bearer token) and shown like inline results, large ones
show their size and download as a file."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import ServerProcess, start_server
from tests.ui.browser import SLOW_MS, log_in, ui_url
from v6flow.client import Client

pytestmark = [pytest.mark.docker, pytest.mark.slow]
#: Payloads whose base64 text is longer go to the store (small, to keep the test light).
THRESHOLD_BYTES = 1024
#: ui/v6flow_ui/src/pages/task_detail.js RENDER_LIMIT_BYTES: larger result blobs are downloaded.
RENDER_LIMIT_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def blob_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server keeping a local blob store with a 1 KiB threshold."""
    directory = tmp_path_factory.mktemp("ui-blobs")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_BLOBS__BACKEND": "local",
                                   "V6FLOW_SERVER_BLOBS__THRESHOLD_BYTES": str(THRESHOLD_BYTES)})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def fed(blob_server: ServerProcess, base_image: str, test_algorithm_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One organization with one node on the blob server."""
    federation = create_federation(server_url=blob_server.url,
                                   root_password=blob_server.root_password,
                                   directory=tmp_path_factory.mktemp("ui-blob-fed"),
                                   base_image=base_image, test_image=test_algorithm_image,
                                   sizes=(30,))
    yield federation
    shutdown_federation(federation)


def _echo_through_the_store(fed: Federation, value: Any) -> tuple[int, int]:
    """An echo task made by v6flow's client (its input goes to the store too); the task and
    run ids once the result is in the store."""
    with Client(fed.server_url, username=fed.username, password=fed.password) as client:
        task = client.task.create(fed.collaboration_id, fed.organization_ids, fed.test_image,
                                  "echo", args=[value], name=f"ui-blob-{uuid.uuid4().hex[:6]}")
    (run,) = fed.wait_for_runs(task.id, timeout=SLOW_MS / 1000)
    assert run["status"] == "completed", run["log"]
    (item,) = fed.results(task.id)
    assert item["blob_storage_used"] is True
    return task.id, run["id"]


def test_a_small_result_blob_is_shown_like_an_inline_result(page: Any, fed: Federation) -> None:
    """The result view fetches the blob and shows its table and JSON, with its size."""
    # Prepare
    rows = [{"site": f"s{i}", "n": i} for i in range(60)]
    assert len(json.dumps(rows)) * 4 / 3 > THRESHOLD_BYTES
    task_id, run_id = _echo_through_the_store(fed, rows)
    # Execute
    log_in(page, ui_url(fed.server_url), fed.username, fed.password, f"/tasks/{task_id}")
    # Assert
    run = page.locator(f'article.run[data-run-id="{run_id}"]')
    table = run.locator(".result-table")
    expect(table.locator("th")).to_have_text(["site", "n"], timeout=SLOW_MS)
    expect(table.locator("tbody tr")).to_have_count(len(rows))
    assert json.loads(run.locator(".json-details pre").text_content()) == rows
    expect(run.locator(".blob-size")).to_contain_text("From the blob store")
    run.get_by_text("Input", exact=True).click()
    expect(run.get_by_text("The input is in the blob store.")).to_be_visible()


def test_a_large_result_blob_shows_its_size_and_downloads(page: Any, fed: Federation) -> None:
    """Above the render limit: the size and a download button, whose file is the result."""
    # Prepare
    value = {"text": "x" * (RENDER_LIMIT_BYTES * 3 // 4 + 1000), "id": uuid.uuid4().hex}
    task_id, run_id = _echo_through_the_store(fed, value)
    log_in(page, ui_url(fed.server_url), fed.username, fed.password, f"/tasks/{task_id}")
    run = page.locator(f'article.run[data-run-id="{run_id}"]')
    expect(run.locator(".blob-size")).to_contain_text("too large to show here", timeout=SLOW_MS)
    expect(run.locator(".blob-size")).to_contain_text("2.1 MB")
    # Execute
    with page.expect_download() as download:
        run.get_by_role("button", name="Download the result").click()
    # Assert
    saved = download.value
    assert saved.suggested_filename == f"result-task-{task_id}-run-{run_id}.json"
    with open(saved.path(), encoding="utf-8") as handle:
        assert json.load(handle) == value
    expect(run.locator(".json-details")).to_have_count(0)
