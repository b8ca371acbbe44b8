"""AlgorithmClient: what an algorithm container uses to reach the federation via its node.

Wire-compatible with ``vantage6.algorithm.client.AlgorithmClient`` 4.15.2 (CONTRACT §2): the
same sub-clients and methods, the same requests against the node proxy at
``f"{HOST}:{PORT}{API_PATH}"``, authenticated with the container token. Differences, on
purpose:

- errors are ``v6flow.errors.ClientError`` subclasses carrying the server's ``msg`` (v4 logs
  and returns the error body);
- :meth:`AlgorithmClient.wait_for_results` starts polling after 0.1 s (x1.5, at most 2 s) instead
  of 1 s (x1.5, at most 300 s), and raises :class:`~v6flow.errors.RunFailed` when the subtask
  failed instead of silently dropping the failed runs' results;
- :meth:`ResultClient.from_task` returns results ordered by run id ascending, which is the order
  of the ``organizations`` list given to ``task.create`` (v4 follows the server: newest first).

The transport is injectable: :class:`~v6flow.algorithm.mock.MockAlgorithmClient` is this class
over an in-memory transport, so the mock runs exactly this code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from v6flow._http_errors import raise_for_response
from v6flow._retry import REACH_NODE_PROXY, WAIT_FOR_SUBTASK
from v6flow.algorithm._env import ContainerIdentity
from v6flow.errors import ClientError, RunFailed, ServerError, TaskTimeout
from v6flow.status import RunStatus
from v6flow.wire import input_to_wire, json_from_bytes, json_to_bytes, result_from_wire

log = logging.getLogger("v6flow.algorithm")

#: First poll delay of wait_for_results (growth and cap: ``v6flow._retry.WAIT_FOR_SUBTASK``).
POLL_START = WAIT_FOR_SUBTASK.wait_initial


class _SubClient:
    def __init__(self, parent: AlgorithmClient) -> None:
        self.parent = parent


class OrganizationClient(_SubClient):
    """Organizations of the collaboration (or study) of this container."""

    def get(self, id_: int) -> dict[str, Any]:
        """``GET /organization/<id>``."""
        return self.parent.request(f"organization/{id_}")  # type: ignore[no-any-return]

    def list(self) -> list[dict[str, Any]]:
        """All organizations in the collaboration (or study), all pages."""
        p = self.parent
        params = ({"study_id": p.study_id} if p.study_id
                  else {"collaboration_id": p.collaboration_id})
        return p.paginate("organization", params)


class CollaborationClient(_SubClient):
    """The collaboration of this container."""

    def get(self) -> dict[str, Any]:
        """``GET /collaboration/<collaboration_id>``."""
        return self.parent.request(  # type: ignore[no-any-return]
            f"collaboration/{self.parent.collaboration_id}"
        )


class StudyClient(_SubClient):
    """Studies (only ``get``: v4's ``study.list`` always fails for containers)."""

    def get(self, id_: int) -> dict[str, Any]:
        """``GET /study/<id>``."""
        return self.parent.request(f"study/{id_}")  # type: ignore[no-any-return]


class TaskClient(_SubClient):
    """Create subtasks (same image, same databases) and read tasks."""

    def get(self, task_id: int) -> dict[str, Any]:
        """``GET /task/<id>``."""
        return self.parent.request(f"task/{task_id}")  # type: ignore[no-any-return]

    def create(self, input_: dict[str, Any], organizations: Sequence[int] | None = None,
               name: str = "subtask", description: str | None = None) -> dict[str, Any]:
        """Create a subtask of this container's task (CONTRACT §2.2 body).

        Args:
            input_: ``{"method", "args", "kwargs"}`` for the partial function.
            organizations: Organization ids that run it, in the order results come back.
            name: Task name.
            description: Task description (default names this node).

        Returns:
            The created task (has ``id``).

        Raises:
            ClientError: the server refused (e.g. 401 for a foreign image).
        """
        p = self.parent
        orgs = list(organizations or [])
        payload = json_to_bytes(input_)
        threshold = p.blob_threshold()
        inputs: list[dict[str, Any]] = []
        for org_id in orgs:  # v4 reads each org's public key here (the node encrypts)
            public_key = p.request(f"organization/{org_id}").get("public_key") or ""
            if threshold is not None and 4 * ((len(payload) + 2) // 3) > threshold:
                inputs.append({"id": org_id, "input": p.upload_blob(payload, public_key)})
            else:
                inputs.append({"id": org_id, "input": input_to_wire(input_)})
        body: dict[str, Any] = {
            "name": name,
            "image": p.image,
            "collaboration_id": p.collaboration_id,
            "description": description or f"task from container on node_id={p.node_id}",
            "organizations": inputs,
            "databases": p.databases,
        }
        if p.study_id:
            body["study_id"] = p.study_id
        if p.store_id:
            body["store_id"] = p.store_id
        return p.request("task", method="post", json=body)  # type: ignore[no-any-return]


class VPNClient(_SubClient):
    """Where the other containers of this job listen (peer-to-peer, v4's ``client.vpn``).

    On a v6flow node every address is ``127.0.0.1:<port>`` in this container's own network
    namespace: the node relays connections to it to the peer (docs/p2p.md). Each address is
    a dict with ``ip``, ``port``, ``label``, ``organization_id``, ``task_id``, ``parent_id``
    and ``run_id``. Unlike v4, a failed request raises ``ClientError`` instead of returning
    ``{"message": ...}``.
    """

    def get_addresses(self, only_children: bool = False, only_parent: bool = False,
                      only_siblings: bool = False, only_self: bool = False,
                      include_children: bool = False, include_parent: bool = False,
                      label: str | None = None) -> list[dict[str, Any]]:
        """Addresses of the runs of this task (and, as asked, its parent or children).

        Args:
            only_children: only this task's subtasks' runs.
            only_parent: only the parent task's runs.
            only_siblings: only this task's runs at other organizations.
            only_self: only this run (at most one ``only_*``).
            include_children: also the subtasks' runs.
            include_parent: also the parent task's runs.
            label: only ports with this label (``LABEL p<port>=<label>`` in the image).

        Raises:
            ClientError: the server refused (e.g. 400 for two ``only_*`` options).
        """
        flags = {"only_children": only_children, "only_parent": only_parent,
                 "only_siblings": only_siblings, "only_self": only_self,
                 "include_children": include_children, "include_parent": include_parent}
        # Only set options are sent, as 1 (v4: "False" would read as true on the server).
        params: dict[str, Any] = {name: 1 for name, value in flags.items() if value}
        if label:
            params["label"] = label
        body = self.parent.request("vpn/algorithm/addresses", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("addresses"), list):
            raise ServerError("the answer of vpn/algorithm/addresses has no 'addresses'",
                              method="GET", url="vpn/algorithm/addresses")
        return list(body["addresses"])

    def get_parent_address(self) -> list[dict[str, Any]]:
        """Addresses of the parent task's runs (a list, as in v4, despite its name)."""
        return self.get_addresses(only_parent=True)

    def get_child_addresses(self) -> list[dict[str, Any]]:
        """Addresses of the subtasks' runs."""
        return self.get_addresses(only_children=True)

    def get_sibling_addresses(self) -> list[dict[str, Any]]:
        """Addresses of this task's runs at the other organizations."""
        return self.get_addresses(only_siblings=True)

    def get_own_address(self) -> list[dict[str, Any]]:
        """This run's own addresses (a list, as in v4)."""
        return self.get_addresses(only_self=True)


class RunClient(_SubClient):
    """Runs of tasks in the same job (inputs/results as stored, not decoded)."""

    def get(self, id_: int) -> dict[str, Any]:
        """``GET /run/<id>``."""
        return self.parent.request(f"run/{id_}")  # type: ignore[no-any-return]

    def from_task(self, task_id: int) -> list[dict[str, Any]]:
        """All runs of a task (all pages), ordered by run id ascending."""
        runs = self.parent.paginate("run", {"task_id": task_id})
        return sorted(runs, key=lambda run: int(run.get("id") or 0))


class ResultClient(_SubClient):
    """Decoded results of runs."""

    def get(self, id_: int) -> Any:
        """The decoded result of one run (``GET /result/<id>``; None when empty)."""
        item = self.parent.request(f"result/{id_}")
        return self._decode(item) if item.get("result") else None

    def from_task(self, task_id: int) -> list[Any]:
        """Decoded results of a task's runs, all pages, ordered by run id ascending.

        Runs without a result (failed ones) are left out, like v4. A result in the blob store
        is fetched through the node proxy, which decodes it (like v4's).
        """
        items = self.parent.paginate("result", {"task_id": task_id})
        items = sorted(items, key=_run_id)
        return [self._decode(item) for item in items if item.get("result")]

    def _decode(self, item: dict[str, Any]) -> Any:
        if item.get("blob_storage_used"):
            return json_from_bytes(self.parent.download_blob(str(item["result"])))
        return result_from_wire(item["result"])


def _run_id(item: dict[str, Any]) -> int:
    run = item.get("run")
    if isinstance(run, dict) and run.get("id") is not None:
        return int(run["id"])
    return int(item.get("id") or 0)


class AlgorithmClient:
    """Talk to the federation through the node proxy with the container token.

    Args:
        token: The container JWT (``TOKEN_FILE``).
        host: ``HOST`` (e.g. ``http://127.0.0.1``).
        port: ``PORT``; left out of the URL when empty.
        path: ``API_PATH`` (``""``: the proxy serves at its root).
        transport: httpx transport (tests and the mock inject one).
        timeout: Per-request timeout in seconds.

    Raises:
        DeserializationError: the token is not a JWT with an object ``sub``.
    """

    def __init__(self, token: str, host: str = "http://127.0.0.1", port: int | str | None = 8080,
                 path: str = "", *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 60.0) -> None:
        self.identity = ContainerIdentity.from_token(token)
        ident = self.identity
        self.image, self.databases = ident.image, ident.databases
        self.node_id, self.organization_id = ident.node_id, ident.organization_id
        self.collaboration_id, self.study_id = ident.collaboration_id, ident.study_id
        self.store_id, self.task_id = ident.store_id, ident.task_id
        self.base_url = f"{host}:{port}{path}" if port not in (None, "") else f"{host}{path}"
        self._token = token
        self._blob_threshold: tuple[int | None] | None = None
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=timeout, trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
        )
        self.organization = OrganizationClient(self)
        self.collaboration = CollaborationClient(self)
        self.study = StudyClient(self)
        self.task = TaskClient(self)
        self.run = RunClient(self)
        self.result = ResultClient(self)
        self.vpn = VPNClient(self)

    @property
    def token(self) -> str:
        """The container token (needed to build child clients, e.g. in the mock)."""
        return self._token

    def request(self, endpoint: str, json: Any = None, method: str = "get",
                params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Any:
        """One request to the proxy; returns the decoded JSON body.

        The positional order ``(endpoint, json, method, params)`` is v4's ``ClientBase.request``.

        Raises:
            ClientError: error status (subclass by status, with the server's ``msg``), or
                ``ServerError`` when the proxy stays unreachable or answers non-JSON.
        """
        response = self._send(method.upper(), endpoint.lstrip("/"), params=params, json=json,
                              headers=headers)
        return self._json(response)

    def paginate(self, endpoint: str, params: dict[str, Any] | None = None) -> list[Any]:
        """All items of a paginated list (follows ``links.next`` with ``page=N``)."""
        page, items = 1, []
        while True:
            body = self.request(endpoint, params={**(params or {}), "page": page})
            items.extend(body.get("data", []))
            if not (body.get("links") or {}).get("next"):
                return items
            page += 1

    def blob_store_enabled(self) -> bool:
        """``GET /blobstream/status`` (any error means no blob store, like v4)."""
        return self.blob_threshold() is not None

    def blob_threshold(self) -> int | None:
        """Inputs whose base64 text is longer than this go to the blob store; None: none.

        Asked once per client (``GET /blobstream/status``; an error means no store, like v4).
        A vantage6 4.x server names no threshold: every input goes there, as v4 does.
        """
        if self._blob_threshold is None:
            try:
                body = self.request("blobstream/status")
            except ClientError:
                body = {}
            enabled = isinstance(body, dict) and bool(body.get("blob_store_enabled"))
            self._blob_threshold = ((int(body.get("threshold_bytes") or 0),) if enabled
                                    else (None,))
        return self._blob_threshold[0]

    def upload_blob(self, payload: bytes, public_key: str = "") -> str:
        """Upload a payload through the node proxy (``POST /blobstream``); its UUID.

        The proxy prepares it for the blob store (base64, or encryption for the organization
        whose ``public_key`` is sent as ``X-Public-Key``, as v4's proxy does).

        Raises:
            ClientError: the proxy or the server refused.
        """
        response = self._send("POST", "blobstream", content=payload, headers={
            "Content-Type": "application/octet-stream", "X-Public-Key": public_key})
        body = self._json(response)
        if not isinstance(body, dict) or not body.get("uuid"):
            raise ServerError("POST /blobstream answered without a uuid",
                              status_code=response.status_code, method="POST", url="blobstream")
        return str(body["uuid"])

    def download_blob(self, blob_id: str) -> bytes:
        """A blob's payload through the node proxy (``GET /blobstream/<uuid>``), decoded there.

        Raises:
            ClientError: the proxy or the server refused.
        """
        return self._send("GET", f"blobstream/{blob_id}").content

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = REACH_NODE_PROXY.call(lambda: self._http.request(method, url, **kwargs))
        except httpx.ConnectError as exc:
            raise ServerError(f"cannot reach the node proxy at {self.base_url}: {exc}",
                              method=method, url=url) from exc
        except httpx.TransportError as exc:
            raise ServerError(f"request to the node proxy failed: {exc}",
                              method=method, url=url) from exc
        raise_for_response(response)
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError("the node proxy answered with a non-JSON body",
                              status_code=response.status_code,
                              method=response.request.method,
                              url=str(response.request.url)) from exc

    def wait_for_task(self, task_id: int, *, interval: float = POLL_START,
                      timeout: float | None = None) -> RunStatus:
        """Poll ``GET /task/<id>/status`` until the task finished; return its status.

        Raises:
            TaskTimeout: ``timeout`` seconds passed first.
        """
        pauses = WAIT_FOR_SUBTASK.bounded(timeout=timeout, wait_initial=interval).delays()
        while True:
            status = _status(self.request(f"task/{task_id}/status").get("status"))
            if status.is_finished:
                return status
            delay = next(pauses, None)
            if delay is None:
                raise TaskTimeout(task_id, timeout or 0.0)
            time.sleep(delay)

    def wait_for_results(self, task_id: int, interval: float = POLL_START, *,
                         timeout: float | None = None) -> list[Any]:
        """Wait for a subtask and return its decoded results (ordered by run id).

        Raises:
            RunFailed: a run of the task failed (carries its status and log tail).
            TaskTimeout: ``timeout`` seconds passed first.
        """
        status = self.wait_for_task(task_id, interval=interval, timeout=timeout)
        if status.is_failed:
            for run in self.run.from_task(task_id):
                if _status(run.get("status")).is_failed:
                    raise RunFailed(
                        run_id=int(run["id"]), task_id=task_id, status=str(run.get("status")),
                        organization_id=int((run.get("organization") or {}).get("id") or 0),
                        log_tail="\n".join(str(run.get("log") or "").splitlines()[-30:]),
                    )
            raise RunFailed(run_id=0, organization_id=0, status=str(status), task_id=task_id)
        return self.result.from_task(task_id)

    def authenticate(self, credentials: dict[str, Any] | None = None,
                     path: str | None = None) -> NotImplementedError:
        """Containers cannot log in; returns (not raises) NotImplementedError like v4."""
        return NotImplementedError("Algorithm containers cannot authenticate!")

    def refresh_token(self) -> NotImplementedError:
        """Containers cannot refresh; returns (not raises) NotImplementedError like v4."""
        return NotImplementedError("Algorithm containers cannot refresh their token!")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> AlgorithmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _status(value: Any) -> RunStatus:
    try:
        return RunStatus(str(value))
    except ValueError:
        return RunStatus.UNKNOWN_ERROR

