"""The asyncio client, for flows: the same operations as ``Client``, driven with ``await``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import httpx

from v6flow import _blobstream as blobstream
from v6flow._http_errors import raise_for_response, transport_errors
from v6flow._retry import RESUBSCRIBE_EVENTS
from v6flow._sse import Event, aopen_stream
from v6flow.client import _ops as ops
from v6flow.client import _result_ops as result_ops
from v6flow.client._auth import UserAuth, token_subject
from v6flow.client._e2e import ClientEncryption, KeySource, read_private_key
from v6flow.client._resources import Asyncio, SubClients
from v6flow.client._watch import DEFAULT_POLL_INTERVAL, LogLines, TaskWatch, log_lines
from v6flow.errors import ClientError, ServerError, TaskTimeout
from v6flow.schemas import BlobCreatedOut, BlobStoreStatusOut, EventName, UserOut
from v6flow.status import RunStatus

T = TypeVar("T")


class AsyncClient(SubClients[Asyncio]):
    """Asyncio v6flow/vantage6-v4 REST client; same arguments and the same sub-clients as
    :class:`v6flow.client.Client`, whose operations are awaited here.

    Examples:
        >>> async with AsyncClient(url, username="root", password="…") as c:
        ...     task = await c.task.create(1, [2], "v6flow/summary:0.1.0", "summary")
        ...     await c.wait_for_task(task.id, timeout=60)
    """

    def __init__(self, base_url: str, *, username: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
                 private_key: KeySource | None = None, by_node_proxy: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.encryption = ClientEncryption(by_node_proxy=by_node_proxy)
        self._key_pending = private_key is not None
        if private_key is not None:
            self.encryption.private_key = read_private_key(private_key)
        self.auth = UserAuth(self.base_url, username=username, password=password,
                             access_token=token)
        self._http = httpx.AsyncClient(base_url=self.base_url + "/", auth=self.auth,
                                       timeout=timeout, transport=transport)
        self._blob_status: BlobStoreStatusOut | None = None
        self._attach_sub_clients(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- plumbing -----------------------------------------------------------------------
    async def request(self, call: ops.Call) -> Any:
        """Send one call; return the decoded JSON body (None when empty).

        Raises:
            ClientError: the mapped subclass for an error status or a transport failure.
        """
        with transport_errors(call.method, f"{self.base_url}/{call.path}"):
            response = await self._http.request(call.method, call.path, params=call.params,
                                                json=call.json)
        raise_for_response(response)
        return response.json() if response.content else None

    async def drive(self, op: ops.Op[T]) -> T:
        """Run an I/O-free operation (see ``_ops``) against the server."""
        try:
            call = next(op)
            while True:
                call = op.send(await self._answer(call))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _answer(self, call: ops.Question) -> Any:
        if isinstance(call, ops.Keys):
            if self._key_pending:
                await self.drive(result_ops.encryption_setup(self.encryption))
                self._key_pending = False
            return self.encryption
        if isinstance(call, ops.Subject):
            if self.auth.access_token is None:
                await self.login()
            assert self.auth.access_token is not None
            return token_subject(self.auth.access_token)
        if isinstance(call, ops.BlobStatus):
            return await self.blob_status()
        if isinstance(call, ops.BlobUpload):
            return await self.upload_blob(call.payload)
        if isinstance(call, ops.BlobDownload):
            return await self.download_blob(call.blob_id)
        return await self.request(call)

    # -- blob store ---------------------------------------------------------------------
    async def blob_status(self) -> BlobStoreStatusOut:
        """The server's blob store (asked once per client; a server without one says so)."""
        if self._blob_status is None:
            try:
                self._blob_status = BlobStoreStatusOut.model_validate(
                    await self.request(ops.Call("GET", "blobstream/status")))
            except ServerError:
                raise  # unreachable or failing: ask again next time
            except ClientError:  # a server without the route has no store (as v4 decides)
                self._blob_status = BlobStoreStatusOut(blob_store_enabled=False)
        return self._blob_status

    async def upload_blob(self, payload: bytes) -> str:
        """Stream ``payload`` to ``POST /blobstream``; the UUID (see ``Client.upload_blob``).

        Raises:
            ClientError: the server refused (no store: 404; too large: 413) or failed.
        """
        url = f"{self.base_url}/blobstream"

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(payload), blobstream.CHUNK_BYTES):
                yield payload[i:i + blobstream.CHUNK_BYTES]

        with transport_errors("POST", url):
            response = await self._http.post(
                "blobstream", content=chunks(),
                headers={"Content-Type": "application/octet-stream"})
        raise_for_response(response)
        return BlobCreatedOut.model_validate(response.json()).uuid

    async def download_blob(self, blob_id: str) -> bytes:
        """The payload of a blob, streamed and base64-decoded as it arrives.

        Raises:
            ClientError: the server refused (403, 404) or failed.
            DeserializationError: the blob is not base64 text (e.g. encrypted).
        """
        url = f"{self.base_url}/blobstream/{blob_id}"
        decoder = blobstream.Base64Decoder()
        payload = bytearray()
        with transport_errors("GET", url):
            async with self._http.stream("GET", f"blobstream/{blob_id}") as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_response(response)
                async for chunk in response.aiter_bytes(blobstream.CHUNK_BYTES):
                    payload += decoder.feed(chunk)
        payload += decoder.flush()
        return bytes(payload)

    async def login(self) -> None:
        """Log in now (otherwise the first request does); raises AuthenticationError."""
        flow = self.auth.login_flow()
        request = next(flow)
        try:
            while True:
                with transport_errors(request.method, str(request.url)):
                    response = await self._http.send(request, auth=None)
                    await response.aread()
                request = flow.send(response)
        except StopIteration:
            return

    async def setup_encryption(self, private_key: KeySource | None, *,
                               replace_public_key: bool = False) -> None:
        """Use the organization's private key for encrypted collaborations; see
        :meth:`v6flow.client.Client.setup_encryption`.

        Raises:
            InvalidKey, PublicKeyMismatch, PermissionDenied.
        """
        key = read_private_key(private_key) if private_key is not None else None
        self.encryption = ClientEncryption(private_key=key,
                                           by_node_proxy=self.encryption.by_node_proxy)
        self._key_pending = False
        await self.drive(result_ops.encryption_setup(self.encryption,
                                              replace_public_key=replace_public_key))

    async def whoami(self) -> UserOut:
        """The logged-in user (``GET /user/<sub of the access token>``)."""
        return await self.drive(ops.user_get())

    # -- push channel -------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[EventStream]:
        """Subscribe to ``GET /events``; entered once the server confirmed (``sync``).

        Raises:
            ClientError: the first subscription failed (e.g. no push channel: 404).
        """
        stream = EventStream(self._http)
        await stream.start()
        try:
            yield stream
        finally:
            await stream.stop()

    async def wait_for_task(self, task_id: int, timeout: float | None = None, *,
                            poll_interval: float = DEFAULT_POLL_INTERVAL,
                            on_log: Callable[[LogLines], None] | None = None) -> RunStatus:
        """Wait until the task is finished; return its final status.

        Reads the status after subscribing to the push channel, then on each of the
        task's ``run_update`` events; polls every ``poll_interval`` s as a safety net.

        Raises:
            TaskTimeout: not finished within ``timeout`` seconds.
            ClientError: the server refused or failed.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self._watch(task_id, poll_interval, on_log)
        except TimeoutError as exc:
            raise TaskTimeout(task_id, timeout or 0.0) from exc

    async def _watch(self, task_id: int, poll_interval: float,
                     on_log: Callable[[LogLines], None] | None) -> RunStatus:
        watch = TaskWatch(task_id, poll_interval)
        async with contextlib.AsyncExitStack() as stack:
            try:
                stream = await stack.enter_async_context(self.events())
            except ClientError:  # no push channel: poll only
                while not (status := await self.task.status(task_id)).is_finished:
                    await asyncio.sleep(poll_interval)
                return status
            event: Event | None = Event(EventName.SYNC)  # read the status right after subscribing
            while True:
                batch = None if event is None else log_lines(event, task_id)
                if batch is not None and on_log is not None:
                    on_log(batch)
                now = time.monotonic()
                if watch.needs_check(event, now):
                    watch.checked(now)
                    status = await self.task.status(task_id)
                    if status.is_finished:
                        return status
                event = await stream.next(timeout=poll_interval)
        raise AssertionError("unreachable")  # pragma: no cover - the loop only returns

    async def task_logs(self, task_id: int, timeout: float | None = None
                        ) -> AsyncIterator[LogLines]:
        """Live ``algorithm_log`` lines of a task as they arrive, until it is finished."""
        queue: asyncio.Queue[LogLines | None] = asyncio.Queue()
        waiter = asyncio.create_task(self.wait_for_task(task_id, timeout,
                                                        on_log=queue.put_nowait))
        waiter.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (batch := await queue.get()) is not None:
                yield batch
            await waiter  # re-raise a timeout or error
        finally:
            waiter.cancel()


class EventStream:
    """A live subscription to ``GET /events`` that resubscribes when the stream breaks.

    Events are buffered in a queue by a background reader; after a resubscription a
    ``sync`` event is delivered again, so a watcher re-reads what it watches.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and wait for the server's ``sync``; raise the first connection error."""
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_forever())
        try:
            await self._ready
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Cancel the reader and close the stream."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when none came within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def _read_forever(self) -> None:
        """Subscribe, then resubscribe for as long as the stream keeps breaking.

        The first subscription's error goes to :meth:`start`; later ones are retried under
        :data:`~v6flow._retry.RESUBSCRIBE_EVENTS` (a stream that was up starts afresh).
        """
        assert self._ready is not None
        try:
            await self._read_once()
        except ClientError as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
                return
        while True:
            await RESUBSCRIBE_EVENTS.acall(self._read_once)

    async def _read_once(self) -> None:
        """One subscription: queue its events until the server ends the stream.

        Raises:
            ClientError: the subscription failed, or the stream broke before ``sync``.
        """
        assert self._ready is not None
        timeout = httpx.Timeout(30.0, read=None)
        url = f"{self._http.base_url}events"
        synced = False
        try:
            async with aopen_stream(self._http, url, timeout=timeout) as events:
                async for event in events:
                    if event is None:
                        continue
                    if event.name == EventName.SYNC:
                        synced = True
                        if not self._ready.done():
                            self._ready.set_result(None)
                            continue  # the watcher reads the status right after start()
                    self._queue.put_nowait(event)
        except ClientError:
            if not synced:
                raise
            # the stream was up and broke: resubscribe at once (the caller loops)
