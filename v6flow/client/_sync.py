"""The blocking client for people and scripts (the async twin lives in ``_async.py``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from v6flow._http_errors import raise_for_response, transport_errors
from v6flow.client import _ops as ops
from v6flow.client._auth import UserAuth, token_subject
from v6flow.client._sse import Event, SSEParser
from v6flow.client._watch import DEFAULT_POLL_INTERVAL, LogLines, TaskWatch, log_lines
from v6flow.errors import NotFound, ServerError, TaskTimeout
from v6flow.status import RunStatus

T = TypeVar("T")
JSON = dict[str, Any]

#: A stream read gives up after this long without a byte; the server pings every 10 s.
STREAM_READ_TIMEOUT = 15.0


class Client:
    """Blocking v6flow/vantage6-v4 REST client.

    Args:
        base_url: API root, e.g. ``http://127.0.0.1:7601/api``.
        username: user to log in as (with ``password``).
        password: that user's password.
        token: an access token to use instead of a login.
        timeout: seconds for each ordinary request.
        transport: an httpx transport to use instead of the network (tests, proxies).

    Examples:
        >>> with Client("http://127.0.0.1:7601/api", username="root", password="…") as c:
        ...     task = c.task.create(1, [1, 2], "v6flow/summary:0.1.0", "summary")
        ...     c.wait_for_task(task["id"], timeout=60)
        ...     c.result.from_task(task["id"])
    """

    def __init__(self, base_url: str, *, username: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = UserAuth(self.base_url, username=username, password=password,
                             access_token=token)
        self._http = httpx.Client(base_url=self.base_url + "/", auth=self.auth,
                                  timeout=timeout, transport=transport)
        self.organization = Organizations(self)
        self.collaboration = Collaborations(self)
        self.node = Nodes(self)
        self.user = Users(self)
        self.role = Roles(self)
        self.task = Tasks(self)
        self.run = Runs(self)
        self.result = Results(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- plumbing -----------------------------------------------------------------------
    def request(self, call: ops.Call) -> Any:
        """Send one call; return the decoded JSON body (None when empty).

        Raises:
            ClientError: the mapped subclass for an error status or a transport failure.
        """
        with transport_errors(call.method, f"{self.base_url}/{call.path}"):
            response = self._http.request(call.method, call.path, params=call.params,
                                          json=call.json)
        raise_for_response(response)
        return response.json() if response.content else None

    def drive(self, op: ops.Op[T]) -> T:
        """Run an I/O-free operation (see ``_ops``) against the server."""
        try:
            call = next(op)
            while True:
                call = op.send(self.request(call))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def login(self) -> None:
        """Log in now (otherwise the first request does); raises AuthenticationError."""
        flow = self.auth.login_flow()
        request = next(flow)
        try:
            while True:
                with transport_errors(request.method, str(request.url)):
                    response = self._http.send(request, auth=None)
                    response.read()
                request = flow.send(response)
        except StopIteration:
            return

    def whoami(self) -> JSON:
        """The logged-in user (``GET /user/<sub of the access token>``)."""
        if self.auth.access_token is None:
            self.login()
        assert self.auth.access_token is not None
        return self.user.get(int(token_subject(self.auth.access_token)))

    # -- push channel -------------------------------------------------------------------
    def events(self, *, read_timeout: float = STREAM_READ_TIMEOUT
               ) -> Generator[Event | None, None, None]:
        """Events of ``GET /events``; yields None on keep-alives so callers can keep time.

        The first event is ``sync``: anything that happens after it is delivered.
        """
        parser = SSEParser()
        timeout = httpx.Timeout(30.0, read=read_timeout)
        url = f"{self.base_url}/events"
        with transport_errors("GET", url), self._http.stream(
            "GET", "events", timeout=timeout, headers={"Accept": "text/event-stream"}
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_response(response)
            for line in response.iter_lines():
                event = parser.feed(line)
                yield event

    def wait_for_task(self, task_id: int, timeout: float | None = None, *,
                      poll_interval: float = DEFAULT_POLL_INTERVAL,
                      on_log: Callable[[LogLines], None] | None = None) -> RunStatus:
        """Block until the task is finished; return its final status.

        Uses the push channel (read the status after subscribing, then on each of the
        task's ``run_update`` events), with a slow poll as a safety net.

        Raises:
            TaskTimeout: not finished within ``timeout`` seconds.
            ClientError: the server refused or failed.
        """
        watching = self._watch(task_id, timeout, poll_interval)
        try:
            while True:
                batch = next(watching)
                if on_log is not None:
                    on_log(batch)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def task_logs(self, task_id: int, timeout: float | None = None) -> Iterator[LogLines]:
        """Live ``algorithm_log`` lines of a task, as they arrive, until it is finished."""
        yield from self._watch(task_id, timeout, DEFAULT_POLL_INTERVAL)

    def _watch(self, task_id: int, timeout: float | None,
               poll_interval: float) -> Generator[LogLines, None, RunStatus]:
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = TaskWatch(task_id, poll_interval)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TaskTimeout(task_id, timeout or 0.0)
            read = STREAM_READ_TIMEOUT if remaining is None else min(STREAM_READ_TIMEOUT,
                                                                    remaining + 0.05)
            try:
                with contextlib.closing(self.events(read_timeout=max(read, 0.05))) as events:
                    for event in events:
                        batch = None if event is None else log_lines(event, task_id)
                        if batch is not None:
                            yield batch
                        now = time.monotonic()
                        if watch.needs_check(event, now):
                            watch.checked(now)
                            status = self.task.status(task_id)
                            if status.is_finished:
                                return status
                        if deadline is not None and now >= deadline:
                            raise TaskTimeout(task_id, timeout or 0.0)
            except (ServerError, NotFound):
                # the stream broke or the server has no push channel: poll, then resubscribe
                status = self.task.status(task_id)
                if status.is_finished:
                    return status
                time.sleep(min(1.0, poll_interval))


class _Resource:
    def __init__(self, client: Client) -> None:
        self._c = client


class Organizations(_Resource):
    """``/organization``."""

    def list(self, *, collaboration_id: int | None = None, name: str | None = None) -> list[JSON]:
        """All organizations visible to the caller."""
        return self._c.drive(ops.organization_list(collaboration_id=collaboration_id, name=name))

    def get(self, id: int) -> JSON:
        """One organization."""
        return self._c.drive(ops.single("GET", f"organization/{id}"))

    def create(self, name: str, **fields: Any) -> JSON:
        """Create an organization (``domain``, ``country``, ... as keywords)."""
        return self._c.drive(ops.organization_create(name=name, **fields))


class Collaborations(_Resource):
    """``/collaboration``."""

    def list(self, *, organization_id: int | None = None, name: str | None = None) -> list[JSON]:
        """All collaborations visible to the caller."""
        return self._c.drive(ops.collaboration_list(organization_id=organization_id, name=name))

    def get(self, id: int) -> JSON:
        """One collaboration."""
        return self._c.drive(ops.single("GET", f"collaboration/{id}"))

    def create(self, name: str, organization_ids: Sequence[int], *,
               encrypted: bool = False) -> JSON:
        """Create a collaboration of the given organizations."""
        return self._c.drive(ops.collaboration_create(
            name=name, organization_ids=organization_ids, encrypted=encrypted))


class Nodes(_Resource):
    """``/node``."""

    def list(self, *, collaboration_id: int | None = None,
             organization_id: int | None = None) -> list[JSON]:
        """All nodes visible to the caller."""
        return self._c.drive(ops.node_list(collaboration_id=collaboration_id,
                                           organization_id=organization_id))

    def get(self, id: int) -> JSON:
        """One node."""
        return self._c.drive(ops.single("GET", f"node/{id}"))

    def create(self, collaboration_id: int, organization_id: int,
               name: str | None = None) -> JSON:
        """Register a node; the answer's ``api_key`` is shown only this once."""
        return self._c.drive(ops.node_create(
            collaboration_id=collaboration_id, organization_id=organization_id, name=name))


class Users(_Resource):
    """``/user``."""

    def get(self, id: int | None = None) -> JSON:
        """One user; without ``id`` the logged-in user."""
        if id is None:
            return self._c.whoami()
        return self._c.drive(ops.single("GET", f"user/{id}"))

    def create(self, username: str, password: str, organization_id: int,
               **fields: Any) -> JSON:
        """Create a user (``firstname``, ``email``, ``roles``, ``rules`` as keywords)."""
        return self._c.drive(ops.user_create(
            username=username, password=password, organization_id=organization_id, **fields))


class Roles(_Resource):
    """``/role``."""

    def list(self, *, name: str | None = None) -> list[JSON]:
        """All roles visible to the caller."""
        return self._c.drive(ops.role_list(name=name))


class Tasks(_Resource):
    """``/task``."""

    def create(self, collaboration_id: int, organizations: Sequence[int], image: str,
               method: str, args: Sequence[Any] | None = None,
               kwargs: dict[str, Any] | None = None,
               databases: Sequence[dict[str, Any]] | None = None, name: str | None = None,
               description: str | None = None) -> JSON:
        """Create a task for ``organizations`` running ``method`` of ``image``."""
        body = ops.task_create_body(
            collaboration_id=collaboration_id, organizations=organizations, image=image,
            method=method, args=args, kwargs=kwargs, databases=databases, name=name,
            description=description)
        return self._c.drive(ops.single("POST", "task", json=body))

    def get(self, id: int, *, include_results: bool = False) -> JSON:
        """One task."""
        return self._c.drive(ops.task_get(id, include_results=include_results))

    def list(self, **filters: Any) -> list[JSON]:
        """Tasks matching ``collaboration_id``, ``parent_id``, ``job_id``, ``name``, ``status``."""
        return self._c.drive(ops.task_list(**filters))

    def status(self, id: int) -> RunStatus:
        """The task's status, derived from its runs."""
        return self._c.drive(ops.task_status(id))

    def delete(self, id: int) -> None:
        """Delete the task with its runs and results."""
        self._c.drive(ops.single("DELETE", f"task/{id}"))

    def kill(self, id: int) -> None:
        """Ask the nodes to stop the task's runs."""
        self._c.drive(ops.task_kill(id))


class Runs(_Resource):
    """``/run``."""

    def list(self, *, task_id: int | None = None,
             organization_id: int | None = None) -> list[JSON]:
        """All runs (of a task)."""
        return self._c.drive(ops.run_list(task_id=task_id, organization_id=organization_id))

    def get(self, id: int) -> JSON:
        """One run."""
        return self._c.drive(ops.single("GET", f"run/{id}"))


class Results(_Resource):
    """``/result``."""

    def from_task(self, task_id: int) -> dict[int, Any]:
        """``{organization_id: decoded JSON result}`` of the task's finished runs."""
        return self._c.drive(ops.results_by_organization(task_id))
