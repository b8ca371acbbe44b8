"""The rest of the unmodified vantage6-client 4.15.2 ``UserClient`` against ``v6flow server``.

Tasks, runs, results and kills run on the session's federation (real nodes, real
containers); utilities, tokens, encryption keys and collaboration scopes on a fresh world of
the same server. Every call runs in the reference venv (``reference_calls.py``) and is
checked with an independent REST read or against the CSVs themselves, never with the
client's own answer alone. Which test drives which client method is listed in
``test_userclient_inventory.py``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fixtures.federation import FINISHED, Federation
from tests.fixtures.reference import ReferencePython
from tests.fixtures.server import ServerProcess
from tests.server.api.cast import ids, listed, new_collaboration, new_node, new_organization
from tests.server.api.staff import ORG_ADMIN, RESEARCHER, person
from tests.server.conftest import World, build_world, unique
from v6flow.errors import DeserializationError
from v6flow.wire import input_from_wire, make_input, result_from_wire

SCRIPT = (Path(__file__).parent / "reference_calls.py").read_text(encoding="utf-8")
Call = tuple[str, list[Any], dict[str, Any]]


@dataclass
class V4:
    """The reference client against one server, logged in as one user."""

    python: ReferencePython
    url: str
    username: str
    password: str

    def answers(self, calls: list[Call]) -> list[dict[str, Any]]:
        """Make the calls in one logged-in client; per call ``{"value"|"error", "printed"}``."""
        out = self.python.run_json(SCRIPT, self.url, self.username, self.password,
                                   json.dumps(calls))
        assert isinstance(out, list)
        return out

    def calls(self, calls: list[Call]) -> list[Any]:
        """The values the calls answered (none of them may raise)."""
        answers = self.answers(calls)
        errors = [(call[0], a["error"]) for call, a in zip(calls, answers, strict=True)
                  if "error" in a]
        assert not errors, errors
        return [a["value"] for a in answers]

    def call(self, dotted: str, *args: Any, **kwargs: Any) -> Any:
        """One call; its value."""
        return self.calls([(dotted, list(args), kwargs)])[0]

    def as_(self, username: str, password: str) -> V4:
        """The same client logged in as someone else."""
        return V4(self.python, self.url, username, password)


@pytest.fixture(scope="module")
def v4(federation: Federation, reference_client: ReferencePython) -> V4:
    """The reference client as the federation's researcher (Root, organization 0)."""
    return V4(reference_client, federation.server_url, federation.username,
              federation.password)


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> Iterator[World]:
    """A fresh world (organizations, a collaboration, registered nodes) on the same server."""
    yield build_world(server)


def column_stats(path: Path, column: str) -> dict[str, float]:
    """What ``column_stats`` computes, from the CSV itself."""
    values = pd.read_csv(path)[column].dropna().astype(float)
    return {"count": int(values.count()), "sum": float(values.sum()),
            "sum_sq": float((values**2).sum())}


def close(got: dict[str, float], want: dict[str, float]) -> bool:
    """Equal counts, sums equal up to rounding."""
    return got["count"] == want["count"] and all(
        abs(got[k] - want[k]) <= 1e-9 * max(1.0, abs(want[k])) for k in ("sum", "sum_sq"))


def wait_for_status(fed: Federation, task_id: int, status: str, timeout: float = 60) -> None:
    """Wait until every run of the task has ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = fed.runs(task_id)
        if runs and all(r["status"] == status for r in runs):
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never {status}: {fed.runs(task_id)}")


@dataclass(frozen=True)
class Done:
    """A finished ``column_stats(age)`` task on every organization, made over REST."""

    task: dict[str, Any]
    input: dict[str, Any]
    expected: dict[int, dict[str, float]]  # organization id -> stats from its CSV


@pytest.fixture(scope="module")
def done(federation: Federation) -> Done:
    """One finished task the read-only tests share."""
    kwargs = {"column": "age"}
    task = federation.create_task("column_stats", kwargs=kwargs, name=unique("v4-reads"))
    runs = federation.wait_for_runs(task["id"], timeout=120)
    assert [r["status"] for r in runs] == ["completed"] * len(runs), runs
    return Done(task=federation.get(f"task/{task['id']}"),
                input=make_input("column_stats", kwargs=kwargs),
                expected={n.organization_id: column_stats(n.csv_path, "age")
                          for n in federation.nodes})


def rest_ids(fed: Federation, path: str, **params: Any) -> list[int]:
    """Ids of every item a list endpoint answers the researcher (one large page)."""
    return ids(fed.get(path, per_page=1000, **params)["data"])


# -- task ----------------------------------------------------------------------------------


def test_task_get(v4: V4, federation: Federation, done: Done) -> None:
    """``task.get`` is ``GET /task/<id>``; with ``include_results`` the results are embedded
    and decode to what the CSVs give."""
    tid = done.task["id"]
    plain, with_results = v4.calls([("task.get", [tid], {}),
                                    ("task.get", [tid], {"include_results": True})])
    assert plain == federation.get(f"task/{tid}")
    assert with_results == federation.get(f"task/{tid}", include="results")
    by_org = {federation.get(f"run/{item['run']['id']}")["organization"]["id"]:
              result_from_wire(item["result"]) for item in with_results["results"]}
    assert by_org.keys() == done.expected.keys()
    assert all(close(by_org[org], want) for org, want in done.expected.items())


def test_task_list(v4: V4, federation: Federation) -> None:
    """``task.list`` with each of its filters answers what ``GET /task`` answers for the
    same query; a central task and its subtask land where they belong."""
    fed = federation
    parent = fed.create_task("central_sum", kwargs={"column": "bmi"}, name=unique("v4-list"),
                             organization_ids=fed.organization_ids[:1])
    fed.wait_for_runs(parent["id"], timeout=120)
    (child,) = fed.get("task", parent_id=parent["id"])["data"]
    fed.wait_for_runs(child["id"], timeout=120)
    run_id = fed.runs(child["id"])[0]["id"]
    job, org, user = parent["job_id"], parent["init_org"]["id"], parent["init_user"]["id"]
    other_org = fed.organization_ids[1]
    both, only_parent, only_child = [parent["id"], child["id"]], [parent["id"]], [child["id"]]
    cases: list[tuple[dict[str, Any], dict[str, Any], list[int] | None]] = [
        # client kwargs, the same query in REST terms, the tasks of this job it must give
        ({"name": parent["name"]}, {"name": parent["name"]}, only_parent),
        ({"collaboration": fed.collaboration_id, "job": job},
         {"collaboration_id": fed.collaboration_id, "job_id": job}, both),
        ({"initiating_org": org, "job": job}, {"init_org_id": org, "job_id": job}, both),
        ({"initiating_org": other_org, "job": job}, {"init_org_id": other_org, "job_id": job},
         []),
        ({"initiating_user": user, "job": job}, {"init_user_id": user, "job_id": job}, both),
        ({"image": fed.test_image, "job": job}, {"image": fed.test_image, "job_id": job}, both),
        ({"parent": parent["id"]}, {"parent_id": parent["id"]}, only_child),
        ({"run": run_id}, {"run_id": run_id}, only_child),
        ({"description": "tests/node", "job": job}, {"description": "tests/node", "job_id": job},
         only_parent),
        ({"database": "default", "job": job}, {"database": "default", "job_id": job}, None),
        ({"status": "completed", "job": job}, {"status": "completed", "job_id": job}, both),
        ({"status": "active", "job": job}, {"status": "active", "job_id": job}, []),
        ({"user_created": True, "job": job}, {"is_user_created": 1, "job_id": job},
         only_parent),
        ({"user_created": False, "job": job}, {"is_user_created": 0, "job_id": job},
         only_child),
        ({"initiating_user": user}, {"init_user_id": user}, None),
    ]
    *pages, embedded = v4.calls(
        [("task.list", [], {**kwargs, "per_page": 1000}) for kwargs, _, _ in cases]
        + [("task.list", [], {"parent": parent["id"], "include_results": True})])
    for (kwargs, params, wanted), page in zip(cases, pages, strict=True):
        assert ids(page["data"]) == rest_ids(fed, "task", **params), kwargs
        assert wanted is None or ids(page["data"]) == sorted(wanted), kwargs
    (with_results,) = embedded["data"]
    assert with_results["results"] == fed.get(f"task/{child['id']}",
                                              include="results")["results"]
    assert len(with_results["results"]) == len(fed.organization_ids)


def test_task_kill(v4: V4, federation: Federation) -> None:
    """``task.kill`` stops a running task: its run ends ``killed by user``."""
    node = federation.nodes[1]
    task = federation.create_task("sleep", args=[120], name=unique("v4-kill"),
                                  organization_ids=[node.organization_id])
    wait_for_status(federation, task["id"], "active")
    assert v4.call("task.kill", task["id"]) is None  # the 4.15.2 client only logs the answer
    (run,) = federation.wait_for_runs(task["id"], timeout=60)
    assert run["status"] == "killed by user"


def test_task_delete(v4: V4, federation: Federation) -> None:
    """``task.delete`` removes the task and its runs."""
    fed = federation
    orgs = fed.organization_ids[:1]
    task = fed.create_task("row_count", name=unique("v4-delete"), organization_ids=orgs)
    # A newer task keeps the deleted ids from being handed out again on SQLite (see
    # test_task_delete_leaves_no_id_to_reuse), which would leave a later run unstarted.
    newer = fed.create_task("row_count", name=unique("v4-keep"), organization_ids=orgs)
    (run,) = fed.wait_for_runs(task["id"])
    fed.wait_for_runs(newer["id"])
    assert v4.call("task.delete", task["id"]) is None
    assert fed.request("GET", f"task/{task['id']}").status_code == 404
    assert fed.request("GET", f"run/{run['id']}").status_code == 404
    assert fed.get(f"task/{newer['id']}")["id"] == newer["id"]


def test_task_delete_leaves_no_id_to_reuse(v4: V4, federation: Federation) -> None:
    """After ``task.delete`` of the newest task, the next task and its run get new ids (a
    node remembers the run ids it handled, and skips a run whose id it has seen)."""
    fed = federation
    orgs = fed.organization_ids[:1]
    task = fed.create_task("row_count", name=unique("v4-delete"), organization_ids=orgs)
    (run,) = fed.wait_for_runs(task["id"])
    v4.call("task.delete", task["id"])
    after = fed.create_task("row_count", name=unique("v4-after"), organization_ids=orgs)
    try:
        (new_run,) = fed.runs(after["id"])
        assert after["id"] > task["id"] and new_run["id"] > run["id"]
        assert fed.wait_for_runs(after["id"])[0]["status"] == "completed"
    finally:  # a run the node skips stays pending; killing it keeps its ids taken
        fed.request("POST", "kill/task", json={"id": after["id"]})


# -- user ----------------------------------------------------------------------------------


def test_user_delete_leaves_no_token_alive(v4: V4, world: World, server: ServerProcess) -> None:
    """After ``user.delete``, the deleted user's access token stays refused, also once
    ``user.create`` has made the next user: tokens name users by id, and on SQLite a freed
    newest id would otherwise be handed out again (tasks: see the test above)."""
    org = world.org_ids[0]
    leaver = person(world, org, RESEARCHER)
    root = v4.as_("root", server.root_password)
    name = unique("newcomer")
    _, newcomer = root.calls([
        ("user.delete", [leaver.id], {}),
        ("user.create", [], {"username": name, "firstname": "New", "lastname": "Comer",
                             "email": f"{name}@example.org", "password": "a long passphrase 9",
                             "organization": org, "roles": []}),
    ])
    assert newcomer["id"] != leaver.id
    assert world.call("GET", f"/user/{newcomer['id']}", leaver.token).status_code == 401


# -- node ----------------------------------------------------------------------------------


def test_node_kill_tasks(v4: V4, federation: Federation) -> None:
    """``node.kill_tasks`` kills every unfinished run on that node, and only there."""
    fed = federation
    target, other = fed.nodes[2], fed.nodes[0]
    on_target = fed.create_task("sleep", args=[120], name=unique("v4-killnode"),
                                organization_ids=[target.organization_id])
    elsewhere = fed.create_task("sleep", args=[120], name=unique("v4-killnode"),
                                organization_ids=[other.organization_id])
    wait_for_status(fed, on_target["id"], "active")
    wait_for_status(fed, elsewhere["id"], "active")
    try:
        answer = v4.call("node.kill_tasks", target.node_id)
        (killed,) = fed.wait_for_runs(on_target["id"], timeout=60)
        (untouched,) = fed.runs(elsewhere["id"])
    finally:
        fed.request("POST", "kill/task", json={"id": elsewhere["id"]})
    assert killed["status"] == "killed by user"
    assert killed["id"] in [k["run_id"] for k in answer["kill_list"]]
    assert {k["organization_id"] for k in answer["kill_list"]} == {target.organization_id}
    assert untouched["status"] == "active"


# -- run -----------------------------------------------------------------------------------


def test_run_get(v4: V4, federation: Federation, done: Done) -> None:
    """``run.get`` is ``GET /run/<id>`` with the input decoded; ``include_task`` embeds the
    task."""
    run_id = federation.runs(done.task["id"])[0]["id"]
    plain, with_task = v4.calls([("run.get", [run_id], {}),
                                 ("run.get", [run_id], {"include_task": True})])
    rest = federation.get(f"run/{run_id}")
    assert json.loads(plain.pop("input")) == input_from_wire(rest.pop("input")) == done.input
    assert plain == rest
    assert with_task["task"] == federation.get(f"run/{run_id}", include="task")["task"]
    assert with_task["task"]["id"] == done.task["id"]


def test_run_from_task(v4: V4, federation: Federation, done: Done) -> None:
    """``run.from_task`` lists the task's runs; ``include_task`` embeds the task."""
    tid = done.task["id"]
    page, with_task = v4.calls([("run.from_task", [tid], {}),
                                ("run.from_task", [tid], {"include_task": True})])
    expected = rest_ids(federation, "run", task_id=tid)
    assert ids(page["data"]) == ids(with_task["data"]) == expected
    assert len(expected) == len(federation.organization_ids)
    assert {r["task"]["id"] for r in with_task["data"]} == {tid}


def test_run_list(v4: V4, federation: Federation, done: Done) -> None:
    """``run.list`` with task, organization, node, state and include_task filters answers
    what ``GET /run`` answers for the same query."""
    fed = federation
    tid = done.task["id"]
    node = fed.nodes[1]
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"task": tid}, {"task_id": tid}),
        ({"task": tid, "organization": node.organization_id},
         {"task_id": tid, "organization_id": node.organization_id}),
        ({"node": node.node_id, "task": tid}, {"node_id": node.node_id, "task_id": tid}),
        ({"node": node.node_id, "state": "open"}, {"node_id": node.node_id, "state": "open"}),
    ]
    pages = v4.calls([("run.list", [], {**kwargs, "per_page": 100}) for kwargs, _ in cases]
                     + [("run.list", [], {"task": tid, "include_task": True})])
    for (kwargs, params), page in zip(cases, pages, strict=False):
        assert ids(page["data"]) == rest_ids(fed, "run", **params), kwargs
    (mine,) = pages[1]["data"]
    assert mine["organization"]["id"] == node.organization_id
    assert {r["task"]["id"] for r in pages[-1]["data"]} == {tid}


def test_run_list_time_filters(v4: V4, federation: Federation, done: Done) -> None:
    """``run.list`` with ``assigned``/``started``/``finished`` date ranges narrows the runs
    as the v4 server does. (Its ``port`` filter is left out: the 4.15.2 server answers 500
    to it, ``Run`` has no ``port`` column.)"""
    tid = done.task["id"]
    today = datetime.now(UTC).date()
    later = (str(today + timedelta(days=1)), str(today + timedelta(days=2)))
    around = (str(today - timedelta(days=1)), str(today + timedelta(days=1)))
    everything, none_later = v4.calls([
        ("run.list", [], {"task": tid, "assigned": around, "started": around,
                          "finished": around}),
        ("run.list", [], {"task": tid, "finished": later}),
    ])
    assert ids(everything["data"]) == rest_ids(federation, "run", task_id=tid)
    assert none_later["data"] == []


def test_run_lists_leave_inputs_out_and_run_get_decodes_them(v4: V4, federation: Federation,
                                                             done: Done) -> None:
    """``run.from_task`` and ``run.list`` answer runs without their input (security finding 3:
    lists never embed inputs unless asked, ``include=input``; the 4.15.2 client tolerates an
    absent field), and ``run.get`` gives each run's input decoded, as v4 does."""
    tid = done.task["id"]
    by_task, listed_runs = v4.calls([("run.from_task", [tid], {}),
                                     ("run.list", [], {"task": tid})])
    listed = by_task["data"] + listed_runs["data"]
    assert listed and all(r.get("input") is None for r in listed)
    singles = v4.calls([("run.get", [r["id"]], {}) for r in by_task["data"]])
    assert [json.loads(r["input"]) for r in singles] == [done.input] * len(singles)


# -- result --------------------------------------------------------------------------------


def test_result_get(v4: V4, federation: Federation, done: Done) -> None:
    """``result.get`` gives one run's decoded result: the stats of that organization's CSV."""
    runs = federation.runs(done.task["id"])
    values = v4.calls([("result.get", [r["id"]], {}) for r in runs])
    for run, value in zip(runs, values, strict=True):
        rest = result_from_wire(federation.get(f"result/{run['id']}")["result"])
        assert json.loads(value) == rest
        assert close(rest, done.expected[run["organization"]["id"]])


def test_result_from_task(v4: V4, federation: Federation, done: Done) -> None:
    """``result.from_task`` lists the task's results decoded, one per organization."""
    page = v4.call("result.from_task", done.task["id"])
    assert ids(page["data"]) == rest_ids(federation, "result", task_id=done.task["id"])
    by_org = {federation.get(f"run/{item['run']['id']}")["organization"]["id"]:
              json.loads(item["result"]) for item in page["data"]}
    assert by_org.keys() == done.expected.keys()
    assert all(close(by_org[org], want) for org, want in done.expected.items())


# -- UserClient itself ---------------------------------------------------------------------


def test_wait_for_task_completion(v4: V4, federation: Federation) -> None:
    """``wait_for_task_completion`` with the client's own ``request`` returns once the task
    has finished."""
    task = federation.create_task("sleep", args=[2], name=unique("v4-wait"),
                                  organization_ids=federation.organization_ids[:1])
    v4.call("wait_for_task_completion", {"$client": "request"}, task["id"], 0.2, False)
    (run,) = federation.runs(task["id"])
    assert run["status"] in FINISHED and run["finished_at"]
    assert federation.get(f"task/{task['id']}/status")["status"] == "completed"


def test_setup_collaboration(v4: V4, federation: Federation) -> None:
    """After ``setup_collaboration``, ``task.create`` and ``task.list`` use that collaboration
    without being told."""
    fed = federation
    name = unique("v4-setup")
    _, made, page = v4.calls([
        ("setup_collaboration", [fed.collaboration_id], {}),
        ("task.create", [], {"organizations": fed.organization_ids[:1], "name": name,
                             "image": fed.test_image, "description": "d",
                             "input_": {"method": "row_count"},
                             "databases": [{"label": "default"}]}),
        ("task.list", [], {"name": name}),
    ])
    assert fed.get(f"task/{made['id']}")["collaboration"]["id"] == fed.collaboration_id
    assert ids(page["data"]) == [made["id"]] == rest_ids(
        fed, "task", name=name, collaboration_id=fed.collaboration_id)
    (run,) = fed.wait_for_runs(made["id"])
    assert run["status"] == "completed"


def test_request(v4: V4, world: World, server: ServerProcess) -> None:
    """``request`` sends any call: a filtered GET and a PATCH, as REST sees them."""
    org = new_organization(world)
    name = world.ok("GET", f"/organization/{org}")["name"]
    got, patched = v4.as_("root", server.root_password).calls([
        ("request", ["organization"], {"params": {"name": name}}),
        ("request", [f"organization/{org}"], {"method": "patch", "json": {"country": "NL"}}),
    ])
    assert ids(got["data"]) == [org] == listed(world, "/organization", name=name)
    assert patched == world.ok("GET", f"/organization/{org}")
    assert patched["country"] == "NL"


def test_refresh_token(v4: V4, world: World) -> None:
    """``refresh_token`` gets a new access token, which the server accepts."""
    me = person(world, world.org_ids[0], RESEARCHER)
    old, _, new, who = v4.as_(me.username, me.password).calls([
        ("token", [], {}), ("refresh_token", [], {}), ("token", [], {}),
        ("whoami.id_", [], {})])
    assert who == me.id and new != old
    assert world.ok("GET", f"/user/{me.id}", new)["username"] == me.username


def test_check_if_blob_store_enabled(v4: V4, world: World) -> None:
    """``check_if_blob_store_enabled`` answers what ``GET /blobstream/status`` says."""
    rest = world.ok("GET", "/blobstream/status")["blob_store_enabled"]
    assert v4.call("check_if_blob_store_enabled") is rest


# -- util ----------------------------------------------------------------------------------


def test_util_get_server_version(v4: V4, world: World) -> None:
    """``util.get_server_version`` answers ``GET /version`` (the v4 version we speak)."""
    version = v4.call("util.get_server_version")
    assert version == world.ok("GET", "/version")
    assert version["version"].startswith("4.")


def test_util_get_server_health(v4: V4, world: World) -> None:
    """``util.get_server_health`` answers ``GET /health``, without logging in as well."""
    (anonymous,) = v4.as_("-", "-").calls([("util.get_server_health", [], {})])
    assert v4.call("util.get_server_health") == anonymous == world.ok("GET", "/health")


def _public_key_of(pem: bytes) -> str:
    """What v4 stores as an organization's ``public_key``: base64 of the public PEM."""
    private = serialization.load_pem_private_key(pem, password=None)
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(public).decode("ascii")


def _plain_input(text: str) -> dict[str, Any] | None:
    """The input if ``text`` is an unencrypted (base64 JSON) one, else None."""
    try:
        return input_from_wire(text)
    except DeserializationError:
        return None


def _new_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return path


def test_util_generate_private_key(v4: V4, world: World, tmp_path: Path) -> None:
    """``util.generate_private_key`` writes an RSA key and puts its public half on the
    organization."""
    org = new_organization(world)
    admin = person(world, org, ORG_ADMIN)
    path = tmp_path / "private_key.pem"
    v4.as_(admin.username, admin.password).call("util.generate_private_key", str(path))
    assert world.ok("GET", f"/organization/{org}")["public_key"] == _public_key_of(
        path.read_bytes())


def test_setup_encryption(v4: V4, world: World, tmp_path: Path) -> None:
    """``setup_encryption`` uploads the key's public half when the organization has none or
    another one, and leaves a matching one; ``setup_encryption(None)`` changes nothing."""
    org = new_organization(world)
    admin = person(world, org, ORG_ADMIN)
    first, second = _new_key(tmp_path / "a.pem"), _new_key(tmp_path / "b.pem")
    client = v4.as_(admin.username, admin.password)

    def stored() -> str:
        return str(world.ok("GET", f"/organization/{org}")["public_key"])

    client.call("setup_encryption", None)
    assert stored() == ""
    client.call("setup_encryption", str(first))
    assert stored() == _public_key_of(first.read_bytes())
    client.call("setup_encryption", str(first))
    assert stored() == _public_key_of(first.read_bytes())
    client.call("setup_encryption", str(second))
    assert stored() == _public_key_of(second.read_bytes())


def test_setup_encryption_in_an_encrypted_collaboration(v4: V4, world: World,
                                                        tmp_path: Path) -> None:
    """With a key set up, ``task.create`` in an encrypted collaboration stores the input
    encrypted, and ``run.get`` decrypts it again."""
    org = new_organization(world)
    collab = new_collaboration(world, [org])
    world.ok("PATCH", f"/collaboration/{collab}", json={"encrypted": True})
    new_node(world, collab, org)
    user = person(world, org, ORG_ADMIN, RESEARCHER)
    key = _new_key(tmp_path / "key.pem")
    wanted: dict[str, Any] = {"method": "row_count", "kwargs": {"secret": unique("plain")}}
    _, made = v4.as_(user.username, user.password).calls([
        ("setup_encryption", [str(key)], {}),
        ("task.create", [], {"organizations": [org], "name": unique("v4-enc"),
                             "image": "v6flow-test/basic:latest", "description": "d",
                             "input_": wanted, "collaboration": collab,
                             "databases": [{"label": "default"}]}),
    ])
    assert "id" in made, made
    (run,) = world.runs(made["id"])
    stored = world.ok("GET", f"/run/{run['id']}")["input"]  # lists leave inputs out
    assert stored and _plain_input(stored) is None  # not base64 JSON: encrypted for the org
    decrypted = v4.as_(user.username, user.password).calls([
        ("setup_encryption", [str(key)], {}), ("run.get", [run["id"]], {})])[1]
    assert json.loads(decrypted["input"]) == wanted


# -- collaboration scopes ------------------------------------------------------------------


def test_collaboration_list_scopes(v4: V4, world: World) -> None:
    """``collaboration.list``: the default scope is one's own organization's collaborations;
    ``encrypted`` filters; ``fields``/``filter_`` trim the answer on the client."""
    org = new_organization(world)
    plain, secret = new_collaboration(world, [org]), new_collaboration(world, [org])
    world.ok("PATCH", f"/collaboration/{secret}", json={"encrypted": True})
    user = person(world, org, RESEARCHER)
    own, encrypted, trimmed, picked = v4.as_(user.username, user.password).calls([
        ("collaboration.list", [], {}),
        ("collaboration.list", [], {"encrypted": True}),
        ("collaboration.list", [], {"fields": ["id", "name"]}),
        ("collaboration.list", [], {"filter_": ["id", plain]}),
    ])
    assert ids(own["data"]) == [plain, secret] == listed(world, "/collaboration",
                                                         organization_id=org)
    assert ids(encrypted["data"]) == [secret] == listed(
        world, "/collaboration", organization_id=org, encrypted=True)
    names = {c: world.ok("GET", f"/collaboration/{c}")["name"] for c in (plain, secret)}
    assert sorted(trimmed, key=lambda c: c["id"]) == [{"id": c, "name": names[c]}
                                                      for c in sorted(names)]
    assert picked == [world.ok("GET", f"/collaboration/{plain}")]

