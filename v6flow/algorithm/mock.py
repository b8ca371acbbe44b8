"""MockAlgorithmClient: run a federated algorithm in-process, without server, nodes or Docker.

It *is* :class:`~v6flow.algorithm.client.AlgorithmClient` (a subclass that only changes how it
is built): every call goes through the real client code over an in-memory httpx transport that
answers the node-proxy routes of CONTRACT §8(a). Creating a task runs the partial function at
once for each organization, with that organization's DataFrames (``mock_data``), a client of
its own (``mock_client``) and run metadata (``mock_metadata``), so nested subtasks work too.

Constructor arguments follow ``vantage6.algorithm.tools.mock_client.MockAlgorithmClient``;
``exposed_ports`` (``{port: label}``) makes every mock run "listen" on those ports, so
``client.vpn`` answers addresses with v4's filters (``127.0.0.1`` and the port itself). The
mock runs one partial at a time, so it shows where peers are (finished runs included), it
relays nothing.
A failing partial function marks its run ``crashed`` with the traceback as log, so
``wait_for_results`` raises :class:`~v6flow.errors.RunFailed` like it would in a federation.

Examples:
    >>> import pandas as pd
    >>> client = MockAlgorithmClient(
    ...     datasets=[[{"database": pd.DataFrame({"x": [1, 2]})}],
    ...               [{"database": pd.DataFrame({"x": [3]})}]],
    ...     module="my_algorithm")
    >>> task = client.task.create({"method": "partial"}, client.organization_ids)  # doctest: +SKIP
    >>> client.wait_for_results(task["id"])                                       # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt

from v6flow.algorithm._env import ContainerIdentity
from v6flow.algorithm.client import AlgorithmClient
from v6flow.algorithm.decorators import RunMetaData
from v6flow.algorithm.loaders import load_data, preprocess
from v6flow.errors import DeserializationError
from v6flow.status import RunStatus, derive_task_status
from v6flow.wire import format_datetime, input_from_wire, json_to_bytes, result_to_wire, utcnow

_MOCK_KEY = "v6flow-mock-signing-key-not-a-secret!"
_PER_PAGE = 10
MOCK_IMAGE = "mock_image"


class MockFederation:
    """In-memory server + nodes + proxies: stores tasks and runs and executes runs at once."""

    def __init__(self, datasets: dict[int, list[Any]], module: str, collaboration_id: int,
                 node_ids: dict[int, int],
                 exposed_ports: Mapping[int, str | None] | None = None) -> None:
        self.datasets = datasets
        self.exposed_ports = dict(exposed_ports or {})
        self.module = module
        self.collaboration_id = collaboration_id
        self.node_ids = node_ids
        self.tasks: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self._tmp: Path | None = None

    # -- identities ------------------------------------------------------------------------
    def token(self, organization_id: int, task_id: int | None) -> str:
        """A container token (HS256 with a fixed mock key) for ``organization_id``."""
        sub = {
            "client_type": "container", "node_id": self.node_ids[organization_id],
            "organization_id": organization_id, "collaboration_id": self.collaboration_id,
            "study_id": None, "store_id": None, "task_id": task_id, "image": MOCK_IMAGE,
            "databases": [{"label": "default"}],
        }
        return jwt.encode({"sub": sub, "client_type": "container"}, _MOCK_KEY, algorithm="HS256")

    @property
    def temporary_directory(self) -> Path:
        """One scratch folder shared by all mock runs (like ``/mnt/tmp`` of a job)."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="v6flow-mock-"))
        return self._tmp

    # -- routing ---------------------------------------------------------------------------
    def handle(self, caller: ContainerIdentity, method: str, path: str,
               params: dict[str, str], body: Any) -> tuple[int, Any]:
        """Answer one proxy request: returns (status code, JSON body)."""
        parts = path.strip("/").split("/")
        route = (method, parts[0], len(parts))
        if route == ("GET", "organization", 1):
            return 200, self._page([self._org(o) for o in self.datasets], params)
        if route == ("GET", "organization", 2) and _int(parts[1]) in self.datasets:
            return 200, self._org(int(parts[1]))
        if route == ("GET", "collaboration", 2) and _int(parts[1]) == self.collaboration_id:
            return 200, {"id": self.collaboration_id, "name": "mock-collaboration",
                         "encrypted": False}
        if route == ("GET", "blobstream", 2) and parts[1] == "status":
            return 200, {"blob_store_enabled": False}
        if route == ("POST", "task", 1):
            return self._create_task(caller, body)
        if route == ("GET", "vpn", 3) and parts[1:] == ["algorithm", "addresses"]:
            return self._addresses(caller, params)
        ref = _int(parts[1]) if len(parts) > 1 else None
        task = self.tasks.get(ref) if ref is not None else None
        if route == ("GET", "task", 2) and task:
            return 200, self._task_out(task)
        if route == ("GET", "task", 3) and task and parts[2] == "status":
            return 200, {"status": self._task_out(task)["status"]}
        if route == ("GET", "run", 1):
            return 200, self._page(self._runs_of(params), params)
        if route == ("GET", "result", 1):
            return 200, self._page([self._result_out(r) for r in self._runs_of(params)], params)
        run = self.runs.get(ref) if ref is not None else None
        if route == ("GET", "run", 2) and run:
            return 200, run
        if route == ("GET", "result", 2) and run:
            return 200, self._result_out(run)
        return 404, {"msg": f"{method} /{path} not found in the mock federation"}

    def _page(self, items: list[Any], params: dict[str, str]) -> dict[str, Any]:
        page = max(1, _int(params.get("page", "1")) or 1)
        chunk = items[(page - 1) * _PER_PAGE: page * _PER_PAGE]
        links: dict[str, str] = {"self": f"?page={page}"}
        if page * _PER_PAGE < len(items):
            links["next"] = f"?page={page + 1}"
        return {"data": chunk, "links": links}

    def _org(self, org_id: int) -> dict[str, Any]:
        return {"id": org_id, "name": f"mock-{org_id}", "public_key": "",
                "domain": f"mock-{org_id}.org"}

    def _runs_of(self, params: dict[str, str]) -> list[dict[str, Any]]:
        task_id = _int(params.get("task_id", ""))
        return [r for r in self.runs.values() if task_id is None or r["task"]["id"] == task_id]

    def _result_out(self, run: dict[str, Any]) -> dict[str, Any]:
        return {"id": run["id"], "run": {"id": run["id"]}, "task": run["task"],
                "result": run["result"], "blob_storage_used": False}

    def _task_out(self, task: dict[str, Any]) -> dict[str, Any]:
        statuses = [self.runs[r]["status"] for r in task["run_ids"]]
        out = {k: v for k, v in task.items() if k != "run_ids"}
        return {**out, "status": str(derive_task_status(statuses))}

    def _addresses(self, caller: ContainerIdentity,
                   params: dict[str, str]) -> tuple[int, Any]:
        """``GET /vpn/algorithm/addresses`` with v4's options (``v6flow_server.services.ports``)."""
        flag = {name: params.get(name) not in (None, "", "0", "false", "False")
                for name in ("only_children", "only_parent", "only_siblings", "only_self",
                             "include_children", "include_parent")}
        if sum(flag[n] for n in ("only_children", "only_parent", "only_siblings",
                                 "only_self")) > 1:
            return 400, {"msg": "You can only specify one of the only_<...> parameters!"}
        task = self.tasks.get(caller.task_id) if caller.task_id is not None else None
        if task is None:
            return 200, {"addresses": []}
        parent_id = (task.get("parent") or {}).get("id")
        children = [t["id"] for t in self.tasks.values()
                    if (t.get("parent") or {}).get("id") == task["id"]]
        task_ids = [task["id"]]
        if flag["include_children"] or flag["only_children"]:
            task_ids = children if flag["only_children"] else task_ids + children
        if flag["include_parent"] or flag["only_parent"]:
            parents = [parent_id] if parent_id is not None else []
            task_ids = parents if flag["only_parent"] else task_ids + parents
        if flag["only_siblings"] or flag["only_self"]:
            task_ids = [task["id"]]
        addresses = []
        for tid in task_ids:
            for run_id in self.tasks[tid]["run_ids"]:
                run = self.runs[run_id]
                org = run["organization"]["id"]
                if (flag["only_siblings"] and org == caller.organization_id) or \
                        (flag["only_self"] and org != caller.organization_id):
                    continue
                addresses += [
                    {"ip": "127.0.0.1", "port": port, "label": label, "organization_id": org,
                     "task_id": tid, "parent_id": (self.tasks[tid].get("parent") or {}).get(
                         "id"), "run_id": run_id}
                    for port, label in sorted(self.exposed_ports.items())
                    if not params.get("label") or params["label"] == label]
        return 200, {"addresses": addresses}

    # -- execution -------------------------------------------------------------------------
    def _create_task(self, caller: ContainerIdentity, body: Any) -> tuple[int, Any]:
        orgs = body.get("organizations") if isinstance(body, dict) else None
        if not orgs or not all(isinstance(o, dict) and "id" in o for o in orgs):
            return 400, {"msg": "organizations must be a non-empty list of {id, input}"}
        unknown = [o["id"] for o in orgs if o["id"] not in self.datasets]
        if unknown:
            return 400, {"msg": f"organizations {unknown} are not in the mock collaboration"}
        task_id = len(self.tasks) + 1
        parent = self.tasks.get(caller.task_id) if caller.task_id is not None else None
        task = {
            "id": task_id, "name": body.get("name"), "description": body.get("description"),
            "image": MOCK_IMAGE, "collaboration": {"id": self.collaboration_id},
            "parent": {"id": parent["id"]} if parent else None,
            "job_id": parent["job_id"] if parent else task_id,
            "init_org": {"id": caller.organization_id}, "databases": body.get("databases"),
            "created_at": format_datetime(utcnow()), "run_ids": [],
        }
        self.tasks[task_id] = task
        for org in orgs:
            run_id = len(self.runs) + 1
            task["run_ids"].append(run_id)
            self.runs[run_id] = {
                "id": run_id, "task": {"id": task_id}, "organization": {"id": org["id"]},
                "node": {"id": self.node_ids[org["id"]]}, "input": org.get("input"),
                "status": str(RunStatus.PENDING), "result": None, "log": "",
                "assigned_at": format_datetime(utcnow()), "started_at": None,
                "finished_at": None, "blob_storage_used": False,
            }
        for run_id in task["run_ids"]:
            self._execute(self.runs[run_id])
        return 201, self._task_out(task)

    def _execute(self, run: dict[str, Any]) -> None:
        org_id, task_id = run["organization"]["id"], run["task"]["id"]
        run["status"], run["started_at"] = str(RunStatus.ACTIVE), format_datetime(utcnow())
        try:
            input_ = input_from_wire(run["input"])
            method = getattr(importlib.import_module(self.module), str(input_["method"]))
            extra: dict[str, Any] = {}
            if getattr(method, "wrapped_in_algorithm_client_decorator", False):
                extra["mock_client"] = MockAlgorithmClient._for(self, org_id, task_id)
            if getattr(method, "wrapped_in_data_decorator", False):
                frames = [frame.copy() for frame in self.datasets[org_id]]
                count = getattr(method, "number_of_databases", None)
                extra["mock_data"] = frames[:count] if count else frames
            if getattr(method, "wrapped_in_metadata_decorator", False):
                extra["mock_metadata"] = RunMetaData(
                    task_id=task_id, node_id=self.node_ids[org_id],
                    collaboration_id=self.collaboration_id, organization_id=org_id,
                    temporary_directory=self.temporary_directory, output_file=None,
                    input_file=None, token_file=None,
                )
            value = method(*input_.get("args", []), **input_.get("kwargs", {}), **extra)
            run["result"] = result_to_wire(json_to_bytes(value))
            run["status"] = str(RunStatus.COMPLETED)
        except Exception:
            run["status"], run["log"] = str(RunStatus.CRASHED), traceback.format_exc()
        run["finished_at"] = format_datetime(utcnow())


class _InMemoryTransport(httpx.BaseTransport):
    """httpx transport that hands every request to a :class:`MockFederation`."""

    def __init__(self, federation: MockFederation) -> None:
        self.federation = federation

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        try:
            caller = ContainerIdentity.from_token(token)
        except DeserializationError:
            return httpx.Response(401, json={"msg": "Missing Authorization Header"})
        body = json.loads(request.read() or b"null")
        status, payload = self.federation.handle(
            caller, request.method, request.url.path, dict(request.url.params), body
        )
        return httpx.Response(status, json=payload)


class MockAlgorithmClient(AlgorithmClient):
    """An AlgorithmClient whose federation lives in this process.

    Args:
        datasets: One list per organization of datasets; each dataset is a DataFrame or a dict
            ``{"database": DataFrame | path, "db_type", "query", "sheet_name",
            "preprocessing"}`` as in v4.
        module: Name of the algorithm package (imported to run partial functions).
        collaboration_id: Mock collaboration id (default 1).
        organization_ids: Ids of the organizations (default 0, 1, 2, ...); this client acts
            as the first one.
        node_ids: Ids of their nodes (default: same as the organization ids).
        exposed_ports: ``{port: label}`` every mock run listens on (what ``EXPOSE`` and
            ``LABEL p<port>`` declare in an image), for ``client.vpn``.
    """

    def __init__(self, datasets: Sequence[Sequence[Any]], module: str,
                 collaboration_id: int | None = None,
                 organization_ids: Sequence[int] | None = None,
                 node_ids: Sequence[int] | None = None,
                 exposed_ports: Mapping[int, str | None] | None = None) -> None:
        n = len(datasets)
        orgs = list(organization_ids) if organization_ids and len(organization_ids) == n \
            else list(range(n))
        nodes = list(node_ids) if node_ids and len(node_ids) == n else list(orgs)
        frames = {org: [_load(ds) for ds in org_sets]
                  for org, org_sets in zip(orgs, datasets, strict=True)}
        federation = MockFederation(frames, module, collaboration_id or 1,
                                    dict(zip(orgs, nodes, strict=True)), exposed_ports)
        self._init_for(federation, orgs[0] if orgs else 0, None)

    @classmethod
    def _for(cls, federation: MockFederation, organization_id: int,
             task_id: int | None) -> MockAlgorithmClient:
        client = cls.__new__(cls)
        client._init_for(federation, organization_id, task_id)
        return client

    def _init_for(self, federation: MockFederation, organization_id: int,
                  task_id: int | None) -> None:
        self.federation = federation
        super().__init__(federation.token(organization_id, task_id), "http://mock-proxy", None,
                         "", transport=_InMemoryTransport(federation))

    @property
    def organization_ids(self) -> list[int]:
        """All organization ids of the mock collaboration."""
        return list(self.federation.datasets)


def _load(dataset: Any) -> Any:
    import pandas as pd

    if isinstance(dataset, pd.DataFrame):
        return dataset
    handle = dataset.get("database")
    if str(dataset.get("db_type") or "").strip().lower() == "other":
        return str(handle)  # like @data: an `other` database is its URI
    df = handle if isinstance(handle, pd.DataFrame) else load_data(
        str(handle), dataset.get("db_type"), query=dataset.get("query"),
        sheet_name=dataset.get("sheet_name"),
    )
    return preprocess(df, dataset.get("preprocessing"))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
