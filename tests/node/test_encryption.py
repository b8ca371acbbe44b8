"""Encrypted collaborations on real nodes: v6flow's client, the proxy, and every mismatch."""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.fixtures.encrypted_federation import (
    create_encrypted_federation,
    keys_of,
    plaintext_traces,
    start_node,
    write_key,
)
from tests.fixtures.federation import Federation, shutdown_federation
from tests.fixtures.server import ServerProcess
from tests.flows.fixtures import summary_image  # noqa: F401 - the fixture
from tests.flows.pooled import assert_matches_pandas, pandas_summary, pooled_frame
from v6flow import crypto
from v6flow.client import Client
from v6flow.errors import NoPrivateKey, PublicKeyMismatch, TamperedPayload, WrongKey
from v6flow.wire import input_to_wire, make_input

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def enc(server: ServerProcess, base_image: str, test_algorithm_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """3 organizations with keys, an encrypted collaboration and 3 nodes with encryption."""
    fed = create_encrypted_federation(server_url=server.url, root_password=server.root_password,
                                      directory=tmp_path_factory.mktemp("encrypted"),
                                      base_image=base_image, test_image=test_algorithm_image)
    yield fed
    shutdown_federation(fed)


def _client(fed: Federation, *, key: Path | None = None) -> Client:
    """The researcher (organization 0) with organization 0's key unless told otherwise."""
    return Client(fed.server_url, username=fed.username, password=fed.password,
                  private_key=key if key is not None else keys_of(fed)[fed.organization_ids[0]])


def _raw_runs(fed: Federation, task_id: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = fed.get("run", task_id=task_id, include="input",
                                         per_page=50)["data"]
    return runs


def _post_task(fed: Federation, inputs: dict[int, str], *, collaboration_id: int | None = None,
               method: str = "echo") -> dict[str, Any]:
    response = fed.request("POST", "task", json={
        "name": f"enc-{method}", "image": fed.test_image, "description": "tests/node",
        "collaboration_id": collaboration_id or fed.collaboration_id,
        "organizations": [{"id": org, "input": text} for org, text in inputs.items()],
        "databases": [{"label": "default"}]})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def test_encrypted_task_runs_and_the_client_decrypts(enc: Federation) -> None:
    """v6flow's client encrypts per organization; the nodes answer encrypted; results match."""
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, enc.organization_ids, enc.test_image,
                                  "column_stats", kwargs={"column": "age"})
        enc.wait_for_runs(task.id, timeout=120)
        results = client.result.from_task(task.id)
    runs = _raw_runs(enc, task.id)
    stored = enc.results(task.id)
    for node in enc.nodes:
        ages = pd.read_csv(node.csv_path)["age"].dropna()
        assert results[node.organization_id]["count"] == int(ages.count())
        assert abs(results[node.organization_id]["sum"] - float(ages.sum())) < 1e-9
    assert all(r["status"] == "completed" for r in runs), [r["log"] for r in runs]
    assert all(r["input"].startswith("v6flow-aead-1.") for r in runs)
    assert all(item["result"].startswith("v6flow-aead-1.") for item in stored)


def test_the_server_never_holds_plaintext(enc: Federation, server: ServerProcess) -> None:
    """A marker sent and returned through an encrypted task is nowhere in the server's
    database or log; the same scan finds it for an unencrypted collaboration."""
    marker = f"secret-{uuid.uuid4().hex}"
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, enc.organization_ids, enc.test_image,
                                  "echo", args=[{"patient": marker}])
        enc.wait_for_runs(task.id, timeout=120)
        results = client.result.from_task(task.id)
    assert results == {org: {"patient": marker} for org in enc.organization_ids}
    assert plaintext_traces(server.database_url, server.log_text(), marker) == []

    control = f"control-{uuid.uuid4().hex}"
    plain = enc.request("POST", "collaboration", json={
        "name": f"plain-{uuid.uuid4().hex}", "organization_ids": enc.organization_ids[:1],
        "encrypted": False}).json()
    enc.request("POST", "node", json={"organization_id": enc.organization_ids[0],
                                      "collaboration_id": plain["id"]})
    _post_task(enc, {enc.organization_ids[0]: input_to_wire(make_input("echo", [control]))},
               collaboration_id=plain["id"])
    assert plaintext_traces(server.database_url, server.log_text(), control) == ["run.input"]


def test_a_central_function_creates_encrypted_subtasks_through_the_proxy(
        enc: Federation) -> None:
    """v6flow's AlgorithmClient sends plain subtask input; the proxy encrypts and decrypts."""
    org0 = enc.organization_ids[0]
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, [org0], enc.test_image, "central_sum",
                                  kwargs={"column": "bmi"})
        runs = enc.wait_for_runs(task.id, timeout=180)
        assert [r["status"] for r in runs] == ["completed"], [r["log"] for r in runs]
        result = client.result.from_task(task.id)[org0]
    pooled = pd.concat(pd.read_csv(n.csv_path) for n in enc.nodes)["bmi"].dropna()
    assert result["count"] == int(pooled.count())
    assert abs(result["sum"] - float(pooled.sum())) < 1e-6
    sub_runs = _raw_runs(enc, result["subtask_id"])
    assert sorted(r["organization"]["id"] for r in sub_runs) == sorted(enc.organization_ids)
    assert all(r["input"].startswith("v6flow-aead-1.") for r in sub_runs)
    assert all(item["result"].startswith("v6flow-aead-1.")
               for item in enc.results(result["subtask_id"]))


def test_a_prefect_flow_runs_as_an_encrypted_central_task(
        enc: Federation, summary_image: str) -> None:  # noqa: F811
    """A flow inside a node container: its client leaves encryption to the proxy, and the
    summary table still equals pandas on the pooled data."""
    columns = ["age", "bmi"]
    org0 = enc.organization_ids[0]
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, [org0], summary_image,
                                  "summary_statistics", kwargs={
                                      "columns": columns, "quantiles": [], "retries": 0,
                                      "timeout_seconds": 120})
        status = client.wait_for_task(task.id, timeout=300)
        (run,) = _raw_runs(enc, task.id)
        assert status.value == "completed", run["log"]
        table = client.result.from_task(task.id)[org0]
    assert_matches_pandas(table, pandas_summary(pooled_frame(enc.csv_paths)[columns]))
    children = enc.get("task", parent_id=task.id, per_page=50)["data"]
    assert len(children) == len(enc.nodes)
    for child in children:
        inputs = [r["input"] for r in _raw_runs(enc, child["id"])]
        assert inputs and all(text.startswith("v6flow-aead-1.") for text in inputs)


def test_a_client_without_key_is_told_before_anything_is_created(enc: Federation) -> None:
    """No private key in an encrypted collaboration: NoPrivateKey, and no task on the server."""
    before = len(enc.get("task", collaboration_id=enc.collaboration_id, per_page=1000)["data"])
    with Client(enc.server_url, username=enc.username, password=enc.password) as client, \
            pytest.raises(NoPrivateKey, match="is encrypted"):
        client.task.create(enc.collaboration_id, enc.organization_ids, enc.test_image, "echo",
                           args=[1])
    after = len(enc.get("task", collaboration_id=enc.collaboration_id, per_page=1000)["data"])
    assert after == before


def test_a_client_with_another_key_is_refused_at_setup(enc: Federation,
                                                       tmp_path: Path) -> None:
    """A key that is not the organization's: PublicKeyMismatch, the server's key unchanged."""
    org0 = enc.organization_ids[0]
    stored = enc.get(f"organization/{org0}")["public_key"]
    other = tmp_path / "other.pem"
    write_key(other, 2048)
    with _client(enc, key=other) as client, pytest.raises(PublicKeyMismatch):
        client.setup_encryption(other)
    assert enc.get(f"organization/{org0}")["public_key"] == stored


def test_results_for_another_organization_are_named(enc: Federation) -> None:
    """Reading a task's results with another organization's key: WrongKey; without: NoPrivateKey."""
    org1 = enc.organization_ids[1]
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, [org1], enc.test_image, "echo",
                                  args=[7])
    enc.wait_for_runs(task.id, timeout=120)
    roles = enc.request("GET", "role", params={"name": "Root"}).json()["data"]
    password = uuid.uuid4().hex
    username = f"org1-{uuid.uuid4().hex[:6]}"
    created = enc.request("POST", "user", json={
        "username": username, "password": password, "organization_id": org1,
        "roles": [r["id"] for r in roles if r["name"] == "Root"]})
    assert created.status_code == 201, created.text
    with Client(enc.server_url, username=username, password=password,
                private_key=keys_of(enc)[org1]) as other, \
            pytest.raises(WrongKey, match=f"organization {org1}"):
        other.result.from_task(task.id)
    with Client(enc.server_url, username=enc.username, password=enc.password) as keyless, \
            pytest.raises(NoPrivateKey):
        keyless.result.from_task(task.id)


def _tamper_result(database_url: str, run_id: int, change: Any) -> None:
    """What a malicious server could do: rewrite a stored result."""
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        (value,) = db.execute("SELECT result FROM run WHERE id = ?", (run_id,)).fetchone()
        db.execute("UPDATE run SET result = ? WHERE id = ?", (change(value), run_id))


def _flip_body(text: str) -> str:
    head, body = text.rsplit(".", 1)
    raw = bytearray(base64.b64decode(body))
    raw[0] ^= 0x01
    return f"{head}.{base64.b64encode(bytes(raw)).decode()}"


def test_a_tampered_or_swapped_result_is_refused(enc: Federation,
                                                 server: ServerProcess) -> None:
    """A flipped bit, or another organization's result in its place: TamperedPayload."""
    org0, org1, org2 = enc.organization_ids
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, [org0, org1, org2], enc.test_image,
                                  "echo", args=["untouched"])
        runs = {r["organization"]["id"]: r for r in enc.wait_for_runs(task.id, timeout=120)}
        assert client.result.from_task(task.id) == dict.fromkeys(enc.organization_ids,
                                                                 "untouched")
        _tamper_result(server.database_url, runs[org1]["id"], _flip_body)
        with pytest.raises(TamperedPayload, match=f"run {runs[org1]['id']}, organization "
                                                  f"{org1}, result: authentication failed"):
            client.result.from_task(task.id)
        _tamper_result(server.database_url, runs[org1]["id"], _flip_body)  # flipped back
        results = {item["run"]["id"]: item["result"] for item in enc.results(task.id)}
        _tamper_result(server.database_url, runs[org2]["id"],
                       lambda _value: results[runs[org0]["id"]])
        with pytest.raises(TamperedPayload, match=f"organization {org2}"):
            client.result.from_task(task.id)


def test_a_tampered_or_moved_input_fails_the_run(enc: Federation) -> None:
    """The node refuses an altered input and one bound to another sender, with the reason."""
    org0, org1, org2 = enc.organization_ids
    payload = json.dumps(make_input("echo", ["x"])).encode()

    def sealed(recipient: int, sender: int) -> str:
        key = crypto.public_key_from_wire(enc.get(f"organization/{recipient}")["public_key"])
        return crypto.aead_encrypt(payload, key, crypto.input_binding(
            collaboration_id=enc.collaboration_id, sender=sender, recipient=recipient))

    # one task each: a failed run fails its task's runs that have not started (v4's rule)
    tasks = [_post_task(enc, {org1: _flip_body(sealed(org1, org0))}),
             _post_task(enc, {org2: sealed(org2, org2)})]
    for task in tasks:
        (run,) = enc.wait_for_runs(task["id"], timeout=120)
        assert run["status"] == "failed"
        assert "cannot decrypt the run input" in run["log"]
        assert "authentication failed" in run["log"]
        assert not any(item["result"] for item in enc.results(task["id"]))


def test_a_node_without_key_fails_encrypted_runs_saying_so(enc: Federation,
                                                           tmp_path: Path) -> None:
    """Encryption disabled in an encrypted collaboration: the run fails, naming the cause."""
    node = start_node(enc, key_path=None, name=f"nokey{uuid.uuid4().hex[:4]}")
    try:
        key = crypto.generate_private_key(2048)
        enc.request("PATCH", f"organization/{node.organization_id}",
                    json={"public_key": crypto.public_key_to_wire(key)})
        collab = enc.extra["collaboration_of"][node.name]
        with _client(enc) as client:
            task = client.task.create(collab, [node.organization_id], enc.test_image, "echo",
                                      args=[1])
        (run,) = enc.wait_for_runs(task.id, timeout=120)
    finally:
        assert enc.stop_node(node) == 0
    assert run["status"] == "failed"
    assert "this node has no private key" in run["log"]
    assert "encryption.private_key" in run["log"]


def test_a_node_with_the_wrong_key_fails_runs_saying_so(enc: Federation,
                                                        tmp_path: Path) -> None:
    """The organization's public key is not the node's: the run fails, wrong key."""
    key_path = tmp_path / "node.pem"
    write_key(key_path, 2048)
    node = start_node(enc, key_path=key_path, name=f"wrong{uuid.uuid4().hex[:4]}")
    try:
        uploaded = enc.get(f"organization/{node.organization_id}")["public_key"]
        assert crypto.same_public_key(uploaded, crypto.private_key_from_pem(
            key_path.read_bytes()))
        other = crypto.generate_private_key(2048)
        enc.request("PATCH", f"organization/{node.organization_id}",
                    json={"public_key": crypto.public_key_to_wire(other)})
        collab = enc.extra["collaboration_of"][node.name]
        with _client(enc) as client:
            task = client.task.create(collab, [node.organization_id], enc.test_image, "echo",
                                      args=[1])
        (run,) = enc.wait_for_runs(task.id, timeout=120)
    finally:
        assert enc.stop_node(node) == 0
    assert run["status"] == "failed"
    assert "cannot decrypt the run input" in run["log"]
    assert "wrong private key" in run["log"]


def test_a_node_with_encryption_refuses_plain_input(enc: Federation,
                                                    server: ServerProcess) -> None:
    """A server that turns the collaboration's flag off cannot make the node run plaintext."""
    org1 = enc.organization_ids[1]
    enc.request("PATCH", f"collaboration/{enc.collaboration_id}", json={"encrypted": False})
    try:
        task = _post_task(enc, {org1: input_to_wire(make_input("echo", ["plain"]))})
        (run,) = enc.wait_for_runs(task["id"], timeout=120)
    finally:
        enc.request("PATCH", f"collaboration/{enc.collaboration_id}", json={"encrypted": True})
    assert run["status"] == "failed"
    assert "the input is not encrypted, but this node has encryption enabled" in run["log"]


def test_a_swapped_input_is_caught_at_the_result(enc: Federation,
                                                 server: ServerProcess) -> None:
    """The client remembers the inputs it sent: a run whose stored input was replaced has a
    result it refuses, naming the run."""
    org0, org1 = enc.organization_ids[:2]
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, [org0, org1], enc.test_image, "echo",
                                  args=["mine"])
        runs = {r["organization"]["id"]: r for r in enc.wait_for_runs(task.id, timeout=120)}
        older = client.task.create(enc.collaboration_id, [org1], enc.test_image, "echo",
                                   args=["older"])
        (old_run,) = _raw_runs(enc, older.id)
        with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE run SET input = ? WHERE id = ?",
                       (old_run["input"], runs[org1]["id"]))
        with pytest.raises(TamperedPayload, match="not the input this client sent"):
            client.result.from_task(task.id)


def test_a_result_that_cannot_be_encrypted_is_not_sent(enc: Federation) -> None:
    """The initiating organization lost its public key during the run: the run fails and no
    result (encrypted or not) reaches the server."""
    org0, org1 = enc.organization_ids[:2]
    stored = enc.get(f"organization/{org0}")["public_key"]
    with _client(enc) as client:
        task = client.task.create(enc.collaboration_id, [org1], enc.test_image, "sleep",
                                  args=[2])
    try:
        assert enc.request("PATCH", f"organization/{org0}",
                           json={"public_key": ""}).status_code == 200
        (run,) = enc.wait_for_runs(task.id, timeout=120)
    finally:
        enc.request("PATCH", f"organization/{org0}", json={"public_key": stored})
    assert run["status"] == "failed"
    assert "the result was not sent" in run["log"]
    assert f"organization {org0} has no public key" in run["log"]
    assert not any(item["result"] for item in enc.results(task.id))


@pytest.mark.parametrize(("section", "reason"), [
    ({"enabled": True}, "private_key must name"),
    ({"enabled": True, "private_key": "/nonexistent/org.pem"}, "cannot read it"),
    ({"enabled": True, "private_key": "KEY", "_content": b"not a key"}, "not a PEM private key"),
    ({"enabled": True, "private_key": "KEY", "_bits": 1024}, "1024 bits"),
], ids=["no-key", "missing-file", "not-a-key", "small-key"])
def test_node_yaml_encryption_section_is_checked(tmp_path: Path, section: dict[str, Any],
                                                 reason: str) -> None:
    """A wrong encryption section stops the node at start, naming the field and the cause."""
    from v6flow.errors import ConfigurationError
    from v6flow_node.settings import load_settings

    key = tmp_path / "org.pem"
    if "_bits" in section:
        key.write_bytes(crypto.private_key_to_pem(crypto.generate_private_key(section["_bits"])))
    else:
        key.write_bytes(section.get("_content", b""))
    encryption = {k: (str(key) if v == "KEY" else v) for k, v in section.items()
                  if not k.startswith("_")}
    config = tmp_path / "node.yaml"
    config.write_text(json.dumps({"server_url": "http://127.0.0.1:1/api",
                                  "api_key": str(uuid.uuid4()), "task_dir": str(tmp_path),
                                  "encryption": encryption}), encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config)
    assert caught.value.field == "encryption"
    assert reason in caught.value.reason


@pytest.mark.parametrize("scheme", [crypto.Scheme.AEAD, crypto.Scheme.V4])
def test_proxy_encryption_for_containers_round_trips(scheme: crypto.Scheme) -> None:
    """encryption.subtask_scheme picks the subtask input scheme; a subtask result bound to
    its task, sender and input opens, one bound to another task does not."""
    from v6flow_node.encryption import NodeEncryption

    key = crypto.generate_private_key(2048)
    node = NodeEncryption(private_key=key, organization_id=1, collaboration_id=5,
                          subtask_scheme=scheme)
    sealed = node.seal_input(b'{"method": "echo"}', crypto.public_key_to_wire(key), 1)
    assert crypto.scheme_of(sealed) is scheme
    assert crypto.decrypt(sealed, key, crypto.input_binding(
        collaboration_id=5, sender=1, recipient=1)) == b'{"method": "echo"}'
    nonce = crypto.aead_nonce(sealed) if scheme is crypto.Scheme.AEAD else "x"
    result = crypto.encrypt(b"[1]", scheme, key.public_key(), crypto.result_binding(
        collaboration_id=5, task_id=9, sender=2, recipient=1, input_nonce=nonce))
    opened = node.open_result(result, task_id=9, run_id=3, sender=2, input_text=sealed)
    assert opened == b"[1]"
    if scheme is crypto.Scheme.AEAD:
        with pytest.raises(TamperedPayload, match="run 3, organization 2"):
            node.open_result(result, task_id=10, run_id=3, sender=2, input_text=sealed)
