"""The blocking client for people and scripts (the async twin lives in ``_async.py``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

import httpx

from v6flow import _blobstream as blobstream
from v6flow._http_errors import raise_for_response, transport_errors
from v6flow._retry import RESUBSCRIBE_EVENTS
from v6flow._sse import Event, open_stream
from v6flow.client import _ops as ops
from v6flow.client import _result_ops as result_ops
from v6flow.client._auth import UserAuth, token_subject
from v6flow.client._e2e import ClientEncryption, KeySource, read_private_key
from v6flow.client._resources import Blocking, SubClients
from v6flow.client._watch import DEFAULT_POLL_INTERVAL, LogLines, TaskWatch, log_lines
from v6flow.errors import ClientError, NotFound, ServerError, TaskTimeout
from v6flow.schemas import BlobCreatedOut, BlobStoreStatusOut, UserOut
from v6flow.status import RunStatus

T = TypeVar("T")

#: A stream read gives up after this long without a byte; the server pings every 10 s.
STREAM_READ_TIMEOUT = 15.0


class Client(SubClients[Blocking]):
    """Blocking v6flow/vantage6-v4 REST client.

    Its sub-clients (``organization``, ``collaboration``, ``node``, ``user``, ``role``,
    ``task``, ``run``, ``result``) answer with the response models of
    :mod:`v6flow.schemas`; :class:`~v6flow.client.AsyncClient` has the same ones.

    Args:
        base_url: API root, e.g. ``http://127.0.0.1:7601/api``.
        username: user to log in as (with ``password``).
        password: that user's password.
        token: an access token to use instead of a login.
        timeout: seconds for each ordinary request.
        transport: an httpx transport to use instead of the network (tests, proxies).
        private_key: the organization's private key (a PEM file path, or the PEM as bytes
            or ``SecretStr``) for encrypted collaborations; checked against the server at
            first use (:meth:`setup_encryption`).
        by_node_proxy: inside an algorithm container: the node proxy encrypts inputs and
            decrypts results, so this client never does.

    Examples:
        >>> with Client("http://127.0.0.1:7601/api", username="root", password="…") as c:
        ...     task = c.task.create(1, [1, 2], "v6flow/summary:0.1.0", "summary")
        ...     c.wait_for_task(task.id, timeout=60)
        ...     c.result.from_task(task.id)
    """

    def __init__(self, base_url: str, *, username: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 private_key: KeySource | None = None, by_node_proxy: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.encryption = ClientEncryption(by_node_proxy=by_node_proxy)
        self._key_pending = private_key is not None
        if private_key is not None:
            self.encryption.private_key = read_private_key(private_key)
        self.auth = UserAuth(self.base_url, username=username, password=password,
                             access_token=token)
        self._http = httpx.Client(base_url=self.base_url + "/", auth=self.auth,
                                  timeout=timeout, transport=transport)
        self._blob_status: BlobStoreStatusOut | None = None
        self._attach_sub_clients(self)

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
                call = op.send(self._answer(call))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _answer(self, call: ops.Question) -> Any:
        if isinstance(call, ops.Keys):
            if self._key_pending:
                self.drive(result_ops.encryption_setup(self.encryption))
                self._key_pending = False
            return self.encryption
        if isinstance(call, ops.Subject):
            if self.auth.access_token is None:
                self.login()
            assert self.auth.access_token is not None
            return token_subject(self.auth.access_token)
        if isinstance(call, ops.BlobStatus):
            return self.blob_status()
        if isinstance(call, ops.BlobUpload):
            return self.upload_blob(call.payload)
        if isinstance(call, ops.BlobDownload):
            return self.download_blob(call.blob_id)
        return self.request(call)

    # -- blob store ---------------------------------------------------------------------
    def blob_status(self) -> BlobStoreStatusOut:
        """The server's blob store (asked once per client; a server without one says so)."""
        if self._blob_status is None:
            try:
                self._blob_status = BlobStoreStatusOut.model_validate(
                    self.request(ops.Call("GET", "blobstream/status")))
            except ServerError:
                raise  # unreachable or failing: ask again next time
            except ClientError:  # a server without the route has no store (as v4 decides)
                self._blob_status = BlobStoreStatusOut(blob_store_enabled=False)
        return self._blob_status

    def upload_blob(self, payload: bytes) -> str:
        """Stream ``payload`` (the blob's bytes as they are stored) to ``POST /blobstream``.

        Returns:
            The UUID to name it by, once, as a task input.

        Raises:
            ClientError: the server refused (no store: 404; too large: 413) or failed.
        """
        url = f"{self.base_url}/blobstream"
        chunks = (payload[i:i + blobstream.CHUNK_BYTES]
                  for i in range(0, len(payload), blobstream.CHUNK_BYTES))
        with transport_errors("POST", url):
            response = self._http.post("blobstream", content=chunks,
                                       headers={"Content-Type": "application/octet-stream"})
        raise_for_response(response)
        return BlobCreatedOut.model_validate(response.json()).uuid

    def download_blob(self, blob_id: str) -> bytes:
        """The payload of a blob: streamed and base64-decoded as it arrives.

        Raises:
            ClientError: the server refused (403, 404) or failed.
            DeserializationError: the blob is not base64 text (e.g. encrypted).
        """
        url = f"{self.base_url}/blobstream/{blob_id}"
        decoder = blobstream.Base64Decoder()
        payload = bytearray()
        with transport_errors("GET", url), self._http.stream(
                "GET", f"blobstream/{blob_id}") as response:
            if response.status_code >= 400:
                response.read()
                raise_for_response(response)
            for chunk in response.iter_bytes(blobstream.CHUNK_BYTES):
                payload += decoder.feed(chunk)
        payload += decoder.flush()
        return bytes(payload)

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

    def setup_encryption(self, private_key: KeySource | None, *,
                         replace_public_key: bool = False) -> None:
        """Use the organization's private key for encrypted collaborations (v4's
        ``setup_encryption``): inputs are encrypted for their organizations, results decrypted.

        The server's public key of the organization must be this key's: it is uploaded when
        there is none, and replaced only with ``replace_public_key`` (a node with the old key
        can then no longer decrypt). ``None`` forgets the key.

        Raises:
            InvalidKey: the key cannot be read or used.
            PublicKeyMismatch: the server has another public key for the organization.
            PermissionDenied: uploading the public key was refused.
        """
        key = read_private_key(private_key) if private_key is not None else None
        self.encryption = ClientEncryption(private_key=key,
                                           by_node_proxy=self.encryption.by_node_proxy)
        self._key_pending = False
        self.drive(result_ops.encryption_setup(self.encryption,
                                               replace_public_key=replace_public_key))

    def whoami(self) -> UserOut:
        """The logged-in user (``GET /user/<sub of the access token>``)."""
        return self.drive(ops.user_get())

    # -- push channel -------------------------------------------------------------------
    def events(self, *, read_timeout: float = STREAM_READ_TIMEOUT
               ) -> Generator[Event | None, None, None]:
        """Events of ``GET /events``; yields None on keep-alives so callers can keep time.

        The first event is ``sync``: anything that happens after it is delivered.

        Raises:
            ClientError: the subscription was refused, or the stream failed (ServerError).
        """
        timeout = httpx.Timeout(30.0, read=read_timeout)
        with open_stream(self._http, f"{self.base_url}/events", timeout=timeout) as events:
            yield from events

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
        pauses = RESUBSCRIBE_EVENTS.delays()
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TaskTimeout(task_id, timeout or 0.0)
            read = STREAM_READ_TIMEOUT if remaining is None else min(STREAM_READ_TIMEOUT,
                                                                    remaining + 0.05)
            try:
                with contextlib.closing(self.events(read_timeout=max(read, 0.05))) as events:
                    for event in events:
                        if event is not None:
                            pauses = RESUBSCRIBE_EVENTS.delays()  # the stream works again
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
                time.sleep(min(next(pauses), poll_interval))
