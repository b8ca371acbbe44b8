"""The blob store through the API: upload, name, read, refuse, release (local folder store).

A server of its own per database backend, with ``blobs.backend: local`` in a test folder, a
short time-to-live for unused uploads and a small upload limit; the S3 backend is held to
the same behaviour by tests/server/test_blob_store_contract.py.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, World, auth, build_world, login, unique
from v6flow.wire import b64encode_str, input_to_wire, json_to_bytes, make_input

TTL = 3.0  # seconds an unused upload lives
MAX_BLOB = 4 * 1024 * 1024


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def blob_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                postgres_databases: Callable[[], str]) -> Iterator[tuple[ServerProcess, Path]]:
    """A server with a local blob store in a folder of the test (and that folder)."""
    directory = tmp_path_factory.mktemp(f"blobs-{request.param}")
    url = (f"sqlite:///{directory}/server.sqlite" if request.param == "sqlite"
           else postgres_databases())
    folder = directory / "blobs"
    proc = start_server(database_url=url, root_password=secrets.token_urlsafe(12),
                        log_dir=directory, extra_env={
                            "V6FLOW_SERVER_BLOBS__BACKEND": "local",
                            "V6FLOW_SERVER_BLOBS__PATH": str(folder),
                            "V6FLOW_SERVER_BLOBS__THRESHOLD_BYTES": "1000",
                            "V6FLOW_SERVER_BLOBS__MAX_BLOB_BYTES": str(MAX_BLOB),
                            "V6FLOW_SERVER_BLOBS__UNREFERENCED_TTL_SECONDS": str(TTL),
                            "V6FLOW_SERVER_BLOBS__SWEEP_INTERVAL_SECONDS": "0.5"})
    yield proc, folder
    proc.stop()


@pytest.fixture(scope="module")
def blob_world(blob_server: tuple[ServerProcess, Path]) -> World:
    """Organizations, a collaboration with two nodes and a researcher on that server."""
    return build_world(blob_server[0])


@pytest.fixture(scope="module")
def folder(blob_server: tuple[ServerProcess, Path]) -> Path:
    """The folder of the local blob store."""
    return blob_server[1]


def upload(world: World, data: bytes | Iterator[bytes], token: str | None = None) -> str:
    """POST /blobstream; the UUID of the stored blob."""
    response = world.call("POST", "/blobstream", token, content=data,
                          headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    return str(response.json()["uuid"])


def download(world: World, blob_id: str, token: str | None = None) -> httpx.Response:
    """GET /blobstream/<uuid>, read whole (the tests' blobs are small)."""
    return world.call("GET", f"/blobstream/{blob_id}", token)


def stored(folder: Path, blob_id: str) -> Path:
    """Where the local store keeps a blob."""
    return folder / blob_id[:2] / blob_id


def blob_task(world: World, inputs: dict[int, str]) -> dict[str, Any]:
    """Create a task as the researcher whose input per organization is ``inputs[org]``."""
    body = world.task_body(list(inputs))
    body["organizations"] = [{"id": org, "input": value} for org, value in inputs.items()]
    response = world.call("POST", "/task", world.researcher_token, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def run_of(world: World, task_id: int, org_id: int) -> dict[str, Any]:
    """The run of ``org_id`` in the task (input included)."""
    run = next(r for r in world.runs(task_id) if r["organization"]["id"] == org_id)
    return dict(world.ok("GET", f"/run/{run['id']}"))


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``check()`` becomes true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_status_names_the_threshold(blob_world: World) -> None:
    """GET /blobstream/status: enabled, with the threshold and the upload limit."""
    assert blob_world.ok("GET", "/blobstream/status") == {
        "blob_store_enabled": True, "threshold_bytes": 1000, "max_blob_bytes": MAX_BLOB}


def test_input_blob_reaches_the_node_of_its_run(blob_world: World, folder: Path) -> None:
    """A task input named by UUID: the run says so, and its node streams the same bytes."""
    payload = b64encode_str(json_to_bytes(make_input("partial", kwargs={"x": "y" * 5000})))
    chunks = (payload[i:i + 999].encode() for i in range(0, len(payload), 999))  # chunked
    blob_id = upload(blob_world, chunks, blob_world.researcher_token)
    org = blob_world.org_ids[0]
    task = blob_task(blob_world, {org: blob_id})
    run = run_of(blob_world, task["id"], org)
    answer = download(blob_world, blob_id, blob_world.node_token(org))
    assert run["input"] == blob_id and run["blob_storage_used"] is True
    assert answer.status_code == 200 and answer.content == payload.encode()
    assert answer.headers["content-type"] == "application/octet-stream"
    assert stored(folder, blob_id).read_bytes() == payload.encode()


def test_result_blob_is_read_like_an_inline_result(blob_world: World) -> None:
    """A node names its upload as result: /result says blob_storage_used; readers stream it."""
    org = blob_world.org_ids[0]
    task = blob_world.create_task([org])
    run = run_of(blob_world, task["id"], org)
    node = blob_world.node_token(org)
    content = os.urandom(300_000)
    blob_id = upload(blob_world, content, node)
    blob_world.ok("PATCH", f"/run/{run['id']}", node,
                  json={"status": "completed", "result": blob_id.upper()})
    result = blob_world.ok("GET", f"/result/{run['id']}", blob_world.researcher_token)
    listed = blob_world.ok("GET", "/result", blob_world.researcher_token,
                           params={"task_id": task["id"]})["data"]
    assert result["result"] == blob_id and result["blob_storage_used"] is True
    assert [item["blob_storage_used"] for item in listed] == [True]
    assert download(blob_world, blob_id, blob_world.researcher_token).content == content


def test_an_upload_is_named_once_and_only_by_its_uploader(blob_world: World) -> None:
    """Another caller cannot claim an upload, nor can its uploader name it twice (400)."""
    org = blob_world.org_ids[0]
    mine = upload(blob_world, b"c2VjcmV0", blob_world.researcher_token)
    colleague = _user(blob_world, org, "Researcher")  # same organization, another user
    as_colleague = blob_world.call("POST", "/task", colleague, json={
        **blob_world.task_body([org]), "organizations": [{"id": org, "input": mine}]})
    node = blob_world.node_token(org)
    run = run_of(blob_world, blob_world.create_task([org])["id"], org)
    as_result = blob_world.call("PATCH", f"/run/{run['id']}", node, json={"result": mine})
    blob_task(blob_world, {org: mine})
    again = blob_world.call("POST", "/task", blob_world.researcher_token, json={
        **blob_world.task_body([org]), "organizations": [{"id": org, "input": mine}]})
    stranger = str(uuid.uuid4())
    unknown = blob_world.call("POST", "/task", blob_world.researcher_token, json={
        **blob_world.task_body([org]), "organizations": [{"id": org, "input": stranger}]})
    assert as_colleague.status_code == 400 and mine in as_colleague.json()["msg"]
    assert as_result.status_code == 400 and mine in as_result.json()["msg"]
    assert again.status_code == 400 and unknown.status_code == 400


def test_only_the_runs_node_and_its_viewers_read_an_input(blob_world: World) -> None:
    """An input blob: the other organization's node and algorithm containers get 403."""
    first, second = blob_world.org_ids
    blob_id = upload(blob_world, b"aW5wdXQ=", blob_world.researcher_token)
    task = blob_task(blob_world, {first: blob_id, second: input_to_wire(make_input("x"))})
    container = blob_world.container_token(task, second)
    assert download(blob_world, blob_id, blob_world.node_token(second)).status_code == 403
    assert download(blob_world, blob_id, container).status_code == 403
    assert download(blob_world, blob_id, blob_world.researcher_token).status_code == 200
    assert download(blob_world, blob_id, blob_world.node_token(first)).status_code == 200


def test_a_result_blob_follows_the_run_view_rule(blob_world: World) -> None:
    """A user of an organization outside the collaboration cannot read a result blob (403);
    an unknown or unused blob is 404, an anonymous caller 401."""
    org = blob_world.org_ids[0]
    run = run_of(blob_world, blob_world.create_task([org])["id"], org)
    node = blob_world.node_token(org)
    blob_id = upload(blob_world, b"cmVzdWx0", node)
    blob_world.ok("PATCH", f"/run/{run['id']}", node, json={"result": blob_id})
    outsider = _user(blob_world, blob_world.outsider_id, "Researcher")
    unused = upload(blob_world, b"dW51c2Vk", node)
    assert download(blob_world, blob_id, outsider).status_code == 403
    assert download(blob_world, unused, blob_world.root_token).status_code == 404
    assert download(blob_world, str(uuid.uuid4())).status_code == 404
    assert HTTP.get(f"{blob_world.url}/blobstream/{blob_id}").status_code == 401


def test_uploading_needs_a_task_create_rule(blob_world: World) -> None:
    """A Viewer may not upload (403), an anonymous caller neither (401)."""
    viewer = _user(blob_world, blob_world.org_ids[0], "Viewer")
    refused = blob_world.call("POST", "/blobstream", viewer, content=b"eA==")
    anonymous = HTTP.post(f"{blob_world.url}/blobstream", content=b"eA==")
    assert refused.status_code == 403 and anonymous.status_code == 401


def test_an_upload_over_the_limit_is_refused_and_not_kept(blob_world: World,
                                                          folder: Path) -> None:
    """A chunked upload past blobs.max_blob_bytes: 413, and nothing stays in the folder."""
    before = _files(folder)

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BLOB // 65536 + 2):
            yield b"x" * 65536

    response = blob_world.call("POST", "/blobstream", blob_world.researcher_token,
                               content=chunks())
    assert response.status_code == 413
    assert eventually(lambda: _files(folder) == before)


def test_deleting_a_task_deletes_its_blobs(blob_world: World, folder: Path) -> None:
    """Input and result blobs of a deleted task leave the store (and answer 404)."""
    org = blob_world.org_ids[0]
    input_id = upload(blob_world, b"aW4=", blob_world.researcher_token)
    task = blob_task(blob_world, {org: input_id})
    run = run_of(blob_world, task["id"], org)
    node = blob_world.node_token(org)
    result_id = upload(blob_world, b"b3V0", node)
    blob_world.ok("PATCH", f"/run/{run['id']}", node, json={"result": result_id})
    assert stored(folder, input_id).exists() and stored(folder, result_id).exists()
    blob_world.ok("DELETE", f"/task/{task['id']}")
    assert eventually(lambda: not stored(folder, input_id).exists()
                      and not stored(folder, result_id).exists())
    assert download(blob_world, result_id).status_code == 404


def test_deleting_a_collaboration_deletes_its_blobs(blob_server: tuple[ServerProcess, Path],
                                                    folder: Path) -> None:
    """delete_dependents on a collaboration releases the blobs of all its tasks."""
    world = build_world(blob_server[0])
    org = world.org_ids[0]
    input_id = upload(world, b"aW4=", world.researcher_token)
    blob_task(world, {org: input_id})
    world.ok("DELETE", f"/collaboration/{world.collaboration_id}",
             params={"delete_dependents": True})
    assert eventually(lambda: not stored(folder, input_id).exists())


def test_an_unused_upload_is_deleted_after_its_time_to_live(blob_world: World,
                                                            folder: Path) -> None:
    """Nobody names it: gone after blobs.unreferenced_ttl_seconds, and can no longer be named."""
    blob_id = upload(blob_world, b"bGF0ZXI=", blob_world.researcher_token)
    assert stored(folder, blob_id).exists()
    assert eventually(lambda: not stored(folder, blob_id).exists(), timeout=TTL + 10)
    org = blob_world.org_ids[0]
    late = blob_world.call("POST", "/task", blob_world.researcher_token, json={
        **blob_world.task_body([org]), "organizations": [{"id": org, "input": blob_id}]})
    assert late.status_code == 400


def test_without_a_store_blobstream_is_absent(api_server: ServerProcess) -> None:
    """The default (blobs.backend none): status false, uploads and downloads 404."""
    token = login(api_server.url, "root", api_server.root_password)
    status = HTTP.get(f"{api_server.url}/blobstream/status").json()
    posted = HTTP.post(f"{api_server.url}/blobstream", content=b"eA==", headers=auth(token))
    fetched = HTTP.get(f"{api_server.url}/blobstream/{uuid.uuid4()}", headers=auth(token))
    assert status == {"blob_store_enabled": False}  # exactly v4's answer
    assert posted.status_code == 404 and fetched.status_code == 404


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _user(world: World, org_id: int, role: str) -> str:
    """Token of a new user of ``org_id`` with one default role."""
    roles = world.ok("GET", "/role", params={"name": role})["data"]
    password = secrets.token_urlsafe(12)
    username = unique(role.lower())
    world.ok("POST", "/user", json={"username": username, "password": password,
                                    "organization_id": org_id, "roles": [roles[0]["id"]]})
    return login(world.url, username, password)
