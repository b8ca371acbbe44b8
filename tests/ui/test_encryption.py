"""Encrypted collaborations in the browser, against real nodes with keys: the private key is
loaded into the tab, inputs are sealed there, results are opened there; the server holds
ciphertext only; wrong keys, tampered results and v4 results show what happened."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.fixtures.encrypted_federation import (
    create_encrypted_federation,
    keys_of,
    plaintext_traces,
)
from tests.fixtures.federation import Federation, shutdown_federation
from tests.fixtures.server import ServerProcess
from tests.ui.browser import SLOW_MS, log_in, ui_url
from v6flow import crypto
from v6flow.client import Client
from v6flow.wire import make_input

pytestmark = [pytest.mark.docker, pytest.mark.slow]
KEY_FILE = "Private key file (PEM)"


@pytest.fixture(scope="module")
def enc(server: ServerProcess, base_image: str, test_algorithm_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """2 organizations with 4096-bit keys, an encrypted collaboration, 2 nodes with encryption;
    the researcher belongs to the first organization."""
    fed = create_encrypted_federation(server_url=server.url, root_password=server.root_password,
                                      directory=tmp_path_factory.mktemp("ui-encrypted"),
                                      base_image=base_image, test_image=test_algorithm_image,
                                      sizes=(60, 40))
    yield fed
    shutdown_federation(fed)


def _collaboration_name(fed: Federation) -> str:
    return str(fed.get(f"collaboration/{fed.collaboration_id}")["name"])


def _load_key(page: Any, path: Path) -> None:
    """Choose the key file in the key panel and wait until the tab holds it."""
    page.get_by_label(KEY_FILE).set_input_files(str(path))
    expect(page.locator(".key-status")).to_contain_text("Key loaded")


def _create_in_browser(page: Any, fed: Federation, method: str, *, args: str = "[]",
                       kwargs: str = "{}") -> int:
    """Fill the new-task form for every organization, loading the key; the new task's id."""
    page.get_by_role("link", name="New task").click()
    form = page.get_by_role("form", name="New task")
    form.get_by_label("Collaboration").select_option(
        label=f"{_collaboration_name(fed)} (encrypted)")
    _load_key(page, keys_of(fed)[fed.organization_ids[0]])
    for node in fed.nodes:
        form.get_by_label(node.organization_name).check()
    form.get_by_label("Name").fill(f"ui-enc-{uuid.uuid4().hex[:6]}")
    form.get_by_label("Image").fill(fed.test_image)
    form.get_by_label("Method").fill(method)
    form.get_by_label("Positional arguments").fill(args)
    form.get_by_label("Keyword arguments").fill(kwargs)
    form.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Task ")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def _go(page: Any, path: str) -> None:
    """Navigate inside the page (a reload would forget the key, by design)."""
    page.evaluate("(href) => { history.pushState(null, '', href);"
                  " dispatchEvent(new PopStateEvent('popstate')); }", path)


def _shown_json(run: Any) -> Any:
    """The result a run card shows, from its 'Result as JSON' block."""
    block = run.locator(".json-details pre")
    expect(block).to_have_count(1, timeout=SLOW_MS)
    return json.loads(block.text_content())


def _runs_by_organization(page: Any, fed: Federation) -> dict[int, Any]:
    expect(page.locator('.run-header .badge[data-status="completed"]')).to_have_count(
        len(fed.nodes), timeout=SLOW_MS)
    return {org: page.locator(f'article.run[data-organization-id="{org}"]')
            for org in fed.organization_ids}


def test_an_encrypted_task_from_the_browser_shows_decrypted_results(
        page: Any, enc: Federation) -> None:
    """The browser seals each input for its organization; the results, opened in the tab,
    equal pandas on each organization's data; the server holds only v6flow-aead-1 text."""
    # Prepare
    log_in(page, ui_url(enc.server_url), enc.username, enc.password, "/tasks")
    # Execute
    task_id = _create_in_browser(page, enc, "column_stats", kwargs='{"column": "age"}')
    runs = _runs_by_organization(page, enc)
    # Assert
    for node in enc.nodes:
        ages = pd.read_csv(node.csv_path)["age"].dropna().astype(float)
        shown = _shown_json(runs[node.organization_id])
        assert shown["count"] == int(ages.count())
        assert shown["sum"] == pytest.approx(float(ages.sum()))
    stored = enc.get("run", task_id=task_id, include="input")["data"]
    assert all(run["input"].startswith("v6flow-aead-1.") for run in stored)
    assert all(item["result"].startswith("v6flow-aead-1.") for item in enc.results(task_id))


def test_the_server_never_sees_what_the_browser_sends(page: Any, enc: Federation,
                                                      server: ServerProcess) -> None:
    """A marker typed into the form comes back decrypted, and is nowhere in the server's
    database or log (as text or base64)."""
    # Prepare
    marker = f"patient-{uuid.uuid4().hex}"
    log_in(page, ui_url(enc.server_url), enc.username, enc.password, "/tasks")
    # Execute
    _create_in_browser(page, enc, "echo", args=json.dumps([{"patient": marker}]))
    runs = _runs_by_organization(page, enc)
    # Assert
    assert [_shown_json(run) for run in runs.values()] == [{"patient": marker}] * len(runs)
    assert plaintext_traces(server.database_url, server.log_text(), marker) == []


def _client_task(fed: Federation, method: str, args: list[Any]) -> tuple[int, dict[int, int]]:
    """A task of the researcher created by v6flow's client (organization 0's key); its id and
    run id per organization, once finished."""
    with Client(fed.server_url, username=fed.username, password=fed.password,
                private_key=keys_of(fed)[fed.organization_ids[0]]) as client:
        task = client.task.create(fed.collaboration_id, fed.organization_ids, fed.test_image,
                                  method, args=args)
    runs = fed.wait_for_runs(task.id, timeout=SLOW_MS / 1000)
    assert all(run["status"] == "completed" for run in runs), [run["log"] for run in runs]
    return task.id, {run["organization"]["id"]: run["id"] for run in runs}


def _other_organization_user(fed: Federation) -> tuple[str, str]:
    """A user (Root role) of the second organization."""
    roles = fed.request("GET", "role", params={"name": "Root"}).json()["data"]
    username, password = f"org1-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    created = fed.request("POST", "user", json={
        "username": username, "password": password, "organization_id": fed.organization_ids[1],
        "roles": [role["id"] for role in roles if role["name"] == "Root"]})
    assert created.status_code == 201, created.text
    return username, password


def test_results_for_another_organization_s_key_say_so(page: Any, enc: Federation) -> None:
    """A user of organization 1 with organization 1's key opens organization 0's task: each
    result says the key does not unwrap it, and for whom it is."""
    # Prepare
    task_id, _runs = _client_task(enc, "echo", [41])
    username, password = _other_organization_user(enc)
    log_in(page, ui_url(enc.server_url), username, password, "/account")
    _load_key(page, keys_of(enc)[enc.organization_ids[1]])
    # Execute
    _go(page, f"/tasks/{task_id}")
    # Assert
    errors = page.locator("article.run .run-result .message-error")
    expect(errors).to_have_count(len(enc.nodes), timeout=SLOW_MS)
    for text in errors.all_text_contents():
        assert "cannot be unwrapped with this private key" in text
        assert f"encrypted for organization {enc.organization_ids[0]}" in text
    expect(page.locator("article.run .json-details")).to_have_count(0)


def _flip_result(database_url: str, run_id: int) -> None:
    """What a malicious server could do: flip one bit of a stored result's ciphertext."""
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        (value,) = db.execute("SELECT result FROM run WHERE id = ?", (run_id,)).fetchone()
        head, body = value.rsplit(".", 1)
        raw = bytearray(base64.b64decode(body))
        raw[0] ^= 0x01
        db.execute("UPDATE run SET result = ? WHERE id = ?",
                   (f"{head}.{base64.b64encode(bytes(raw)).decode()}", run_id))


def test_a_tampered_result_shows_the_error_on_that_result(page: Any, enc: Federation,
                                                          server: ServerProcess) -> None:
    """One altered result: its card says authentication failed; the other still opens."""
    # Prepare
    org0, org1 = enc.organization_ids
    task_id, runs = _client_task(enc, "echo", ["untouched"])
    _flip_result(server.database_url, runs[org1])
    log_in(page, ui_url(enc.server_url), enc.username, enc.password, "/account")
    _load_key(page, keys_of(enc)[org0])
    # Execute
    _go(page, f"/tasks/{task_id}")
    # Assert
    cards = _runs_by_organization(page, enc)
    expect(cards[org1].locator(".run-result .message-error")).to_contain_text(
        f"The result of run {runs[org1]} (organization {org1}) cannot be read: authentication "
        "failed")
    assert _shown_json(cards[org0]) == "untouched"


def test_v4_results_are_decrypted_in_the_browser(page: Any, enc: Federation) -> None:
    """Inputs sealed with v4's scheme get v4 results (PKCS#1 v1.5 + AES-CTR); the tab opens
    them and says the scheme cannot detect changes."""
    # Prepare
    value = {"v4": uuid.uuid4().hex}
    payload = json.dumps(make_input("echo", [value])).encode()
    inputs = {org: crypto.v4_encrypt(payload, crypto.public_key_from_wire(
        enc.get(f"organization/{org}")["public_key"])) for org in enc.organization_ids}
    created = enc.request("POST", "task", json={
        "name": "ui-v4", "image": enc.test_image, "collaboration_id": enc.collaboration_id,
        "organizations": [{"id": org, "input": text} for org, text in inputs.items()],
        "databases": [{"label": "default"}]})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    enc.wait_for_runs(task_id, timeout=SLOW_MS / 1000)
    assert all("$" in item["result"] for item in enc.results(task_id))
    log_in(page, ui_url(enc.server_url), enc.username, enc.password, "/account")
    _load_key(page, keys_of(enc)[enc.organization_ids[0]])
    # Execute
    _go(page, f"/tasks/{task_id}")
    # Assert
    runs = _runs_by_organization(page, enc)
    assert [_shown_json(run) for run in runs.values()] == [value] * len(runs)
    expect(page.get_by_text("vantage6 4.x's scheme, which cannot detect changes")).to_have_count(
        len(runs))


def test_another_organization_s_key_is_not_loaded(page: Any, enc: Federation) -> None:
    """A key whose public half is not the one the server holds for the user's organization is
    refused, naming the organization; the tab holds no key afterwards."""
    # Prepare
    organization = enc.get(f"organization/{enc.organization_ids[0]}")["name"]
    log_in(page, ui_url(enc.server_url), enc.username, enc.password, "/account")
    # Execute
    page.get_by_label(KEY_FILE).set_input_files(str(keys_of(enc)[enc.organization_ids[1]]))
    # Assert
    expect(page.locator(".key-panel [role=alert]")).to_contain_text(
        f"This is not the key of {organization}")
    expect(page.locator(".key-status")).to_have_count(0)
    expect(page.get_by_label(KEY_FILE)).to_be_visible()


def test_the_key_is_never_sent_nor_stored(page: Any, enc: Federation) -> None:
    """Loading the key sends no request carrying it and leaves nothing in web storage; the
    tab shows the fingerprint `v6flow key generate` prints; a reload forgets it."""
    # Prepare
    path = keys_of(enc)[enc.organization_ids[0]]
    pem = path.read_text()
    wire = crypto.public_key_to_wire(crypto.private_key_from_pem(pem.encode()))
    body_line = pem.splitlines()[5]
    sent: list[str] = []
    page.on("request", lambda request: sent.append(
        f"{request.url} {request.post_data or ''} {request.headers}"))
    log_in(page, ui_url(enc.server_url), enc.username, enc.password, "/account")
    # Execute
    _load_key(page, path)
    expect(page.locator(".key-status")).to_have_text(
        f"Key loaded from {path.name} ({crypto.KEY_BITS} bits, fingerprint "
        f"{hashlib.sha256(wire.encode()).hexdigest()[:16]}).")
    stored = page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
    page.reload()
    # Assert
    assert not any(body_line in item for item in sent)
    assert body_line not in stored and "PRIVATE" not in stored
    expect(page.get_by_label(KEY_FILE)).to_be_visible()
    expect(page.locator(".key-status")).to_have_count(0)
