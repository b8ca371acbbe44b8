"""The node daemon: events in, runs out.

Start-up: log in, read the node's record, start the container proxy, follow the event stream.
``sync`` (sent on every connect) and a periodic re-sync fetch all open runs; ``new_task``
fetches that task's open runs; ``kill_containers`` kills matching local containers. A run the
node already handles (in memory, or a container found by label) is never started twice.

SIGTERM/SIGINT: kill running containers, report them, remove every container, network and
volume labelled with this node, and return :data:`ExitCode.OK`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import structlog

from v6flow._retry import REACH_SERVER
from v6flow._sse import Event
from v6flow.crypto import Scheme
from v6flow.errors import AuthenticationError, ClientError, DeserializationError
from v6flow.schemas import (
    CollaborationOut,
    KillContainersEvent,
    NewTaskEvent,
    NodeOut,
    RunOut,
    SyncEvent,
)
from v6flow.status import RunStatus
from v6flow_node.encryption import NodeEncryption
from v6flow_node.errors import NodeError
from v6flow_node.exit_codes import ExitCode
from v6flow_node.proxy import ProxyServer
from v6flow_node.relay import PeerRelay
from v6flow_node.runner import NodeContext, RunHandle, execute_run, report_failure
from v6flow_node.runtime.dbforward import DatabaseForwarder, plan_forwards
from v6flow_node.runtime.docker import DockerRuntime
from v6flow_node.server_link import ServerLink
from v6flow_node.settings import NodeSettings, load_private_key
from v6flow_node.whitelist import WhitelistProxy

log = structlog.get_logger(__name__)

_RESYNC_SECONDS = 30.0
_STOP_GRACE_SECONDS = 30.0
_FINISHED_MEMORY = 10_000


def docker_safe(name: str) -> str:
    """A node name usable in container names (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``)."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]+", "-", name).strip("-.") or "node"
    return cleaned if cleaned[0].isalnum() else f"n{cleaned}"


class NodeDaemon:
    """One node process."""

    def __init__(self, settings: NodeSettings) -> None:
        """Prepare the daemon (no I/O until :meth:`run`)."""
        self.settings = settings
        self.handles: dict[int, RunHandle] = {}
        #: Runs this process finished recently: a stale open-run list must not restart them.
        self._finished: OrderedDict[int, None] = OrderedDict()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        self.link = ServerLink(server_url=settings.server_url,
                               api_key=settings.api_key.get_secret_value(), client=self._http)
        self.ctx: NodeContext | None = None
        self._background: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def stop(self) -> None:
        """Ask the daemon to shut down (signal-handler safe)."""
        self._stop.set()

    async def run(self) -> ExitCode:
        """Run until stopped; returns the process exit code."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=64,
                                                     thread_name_prefix="v6flow-node"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            return await self._run()
        finally:
            await self._http.aclose()

    async def _login(self) -> NodeOut | None:
        """Log in and read this node's record, retrying under
        :data:`~v6flow._retry.REACH_SERVER` while the server is unreachable.

        Returns:
            The node record, or None when the daemon was stopped first.

        Raises:
            AuthenticationError: the server rejected the api_key.
        """
        failures = 0

        async def attempt() -> NodeOut:
            nonlocal failures
            try:
                await self.link.login()
                return await self.link.get_node()
            except ClientError as exc:
                failures += 1
                if failures == 1 and not isinstance(exc, AuthenticationError):
                    log.warning("server not reachable yet; retrying until it answers",
                                server_url=self.settings.server_url, error=str(exc))
                raise

        login = asyncio.ensure_future(REACH_SERVER.acall(attempt))
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({login, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not login.done():
            login.cancel()
            with contextlib.suppress(asyncio.CancelledError, ClientError):
                await login
            return None
        return login.result()

    async def _run(self) -> ExitCode:
        try:
            node = await self._login()
        except AuthenticationError as exc:
            log.error("the server rejected the api_key", error=exc.msg)
            return ExitCode.AUTHENTICATION
        if node is None:
            return ExitCode.OK
        name = docker_safe(self.settings.name or node.name or f"node-{node.id}")
        structlog.contextvars.bind_contextvars(node=name)
        node_dir = self.settings.task_dir / name
        proxy_dir = node_dir / "proxy"
        forwarder = DatabaseForwarder(plan_forwards(self.settings.databases), proxy_dir)
        try:
            runtime = await asyncio.to_thread(
                DockerRuntime, node=name, proxy_dir=proxy_dir,
                sidecar_image=self.settings.sidecar_image, limits=self.settings.limits,
                database_forwards=forwarder.plan,
                whitelist=self.settings.whitelist is not None,
                peer_to_peer=self.settings.peer_to_peer,
                spare_sidecars=self.settings.spare_sidecars)
            await asyncio.to_thread(runtime.client.ping)
            await asyncio.to_thread(runtime.list_leftover_runs)  # what a restart may adopt
        except Exception as exc:  # docker.errors.DockerException and socket errors
            log.error("docker engine unreachable", error=str(exc))
            return ExitCode.DOCKER
        peers = (PeerRelay(server_url=self.settings.server_url, link=self.link)
                 if self.settings.peer_to_peer else None)
        e2e = await self._encryption(node)
        self.ctx = NodeContext(settings=self.settings, link=self.link, runtime=runtime,
                               node_dir=node_dir, node_name=name,
                               organization_id=node.organization.id, peers=peers, e2e=e2e)
        proxy = ProxyServer(server_url=self.settings.server_url,
                            socket_path=proxy_dir / "proxy.sock", client=self._http,
                            peers=peers, e2e=e2e)
        whitelist = (WhitelistProxy(whitelist=self.settings.whitelist,
                                    socket_path=proxy_dir / "whitelist.sock")
                     if self.settings.whitelist is not None else None)
        try:
            await proxy.start()
            await forwarder.start()
            if whitelist is not None:
                await whitelist.start()
        except (NodeError, OSError, SystemExit) as exc:
            log.error("proxy could not start", error=str(exc))
            return ExitCode.PROXY
        runtime.fill_spares()
        log.info("node started", node_id=self.link.node_id,
                 organization_id=self.ctx.organization_id)
        if not self.ctx.settings.policies.allowed_algorithms:
            log.warning("policies.allowed_algorithms is empty: every run will be 'not allowed'")
        background = [asyncio.create_task(self.link.listen(self._on_event), name="events"),
                      asyncio.create_task(self._resync_forever(), name="resync")]
        await self._stop.wait()
        log.info("stopping node")
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self._stop_runs()
        await runtime.stop_spares()
        await asyncio.to_thread(runtime.remove_everything)
        await forwarder.stop()
        await proxy.stop()
        if whitelist is not None:
            await whitelist.stop()
        log.info("node stopped")
        return ExitCode.OK

    async def _encryption(self, node: NodeOut) -> NodeEncryption:
        """Set up end-to-end encryption: upload the public key when the server's differs,
        and say at start what this node will do with the collaboration's runs."""
        settings = self.settings.encryption
        key = load_private_key(settings.private_key) if (
            settings.enabled and settings.private_key is not None) else None
        e2e = NodeEncryption(private_key=key, organization_id=node.organization.id,
                             collaboration_id=node.collaboration.id, link=self.link,
                             subtask_scheme=Scheme(settings.subtask_scheme.value))
        try:
            collaboration = await self.link.call(
                "GET", f"collaboration/{node.collaboration.id}", CollaborationOut)
            if await e2e.upload_public_key():
                log.info("uploaded the organization's public key",
                         organization_id=node.organization.id)
        except (ClientError, DeserializationError) as exc:
            log.error("could not set up encryption; encrypted runs may fail", error=str(exc))
            return e2e
        if collaboration.encrypted and not e2e.enabled:
            log.warning("the collaboration is encrypted but this node has no private key: "
                        "every run will fail until encryption.enabled and "
                        "encryption.private_key are set in node.yaml",
                        collaboration_id=collaboration.id)
        elif e2e.enabled and not collaboration.encrypted:
            log.warning("encryption is enabled but the collaboration is not encrypted: this "
                        "node refuses unencrypted input, so every run will fail until "
                        "encryption.enabled is false", collaboration_id=collaboration.id)
        elif e2e.enabled:
            log.info("end-to-end encryption enabled", collaboration_id=collaboration.id)
        return e2e

    # --- events ---------------------------------------------------------------------------
    async def _on_event(self, event: Event) -> None:
        try:
            payload = event.payload
        except DeserializationError as exc:
            log.warning("event ignored", event_name=event.name, error=str(exc))
            return
        if isinstance(payload, SyncEvent):
            self._spawn(self._sync())
        elif isinstance(payload, NewTaskEvent):
            self._spawn(self._sync(payload.id))
        elif isinstance(payload, KillContainersEvent):
            self._kill(payload)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(_RESYNC_SECONDS)
            await self._sync()

    async def _sync(self, task_id: int | None = None) -> None:
        """Fetch open runs (of one task, or all) and start those not yet handled."""
        if self._stop.is_set():
            return
        try:
            runs = await self.link.open_runs(task_id)
        except (ClientError, DeserializationError) as exc:
            log.warning("could not fetch open runs", error=str(exc), task_id=task_id)
            return
        for run in runs:
            self._start(run)

    def _start(self, run: RunOut) -> None:
        run_id = run.id
        if (run_id in self.handles or run_id in self._finished or self._stop.is_set()
                or self.ctx is None):
            return
        handle = self.handles[run_id] = RunHandle(run_id=run_id, task_id=run.task.id)
        task = asyncio.create_task(self._guarded(run, handle), name=f"run-{run_id}")
        self._tasks[run_id] = task

    async def _guarded(self, run: RunOut, handle: RunHandle) -> None:
        assert self.ctx is not None
        try:
            await execute_run(self.ctx, run, handle)
        except Exception as exc:
            log.exception("run handling failed", run_id=handle.run_id)
            with contextlib.suppress(Exception):
                await report_failure(self.ctx, handle, RunStatus.UNKNOWN_ERROR,
                                     f"node error while handling the run: "
                                     f"{type(exc).__name__}: {exc}")
        finally:
            self._finished[handle.run_id] = None
            while len(self._finished) > _FINISHED_MEMORY:
                self._finished.popitem(last=False)
            self.handles.pop(handle.run_id, None)
            self._tasks.pop(handle.run_id, None)

    def _kill(self, event: KillContainersEvent) -> None:
        """Kill containers named by a ``kill_containers`` event (own organization only)."""
        assert self.ctx is not None
        own_org = self.ctx.organization_id
        if event.node_id is not None:
            targets = list(self.handles) if event.node_id == self.link.node_id else []
        else:
            targets = [item.run_id for item in event.kill_list
                       if item.organization_id == own_org]
        for run_id in targets:
            handle = self.handles.get(run_id)
            if handle is None:
                continue
            handle.killed = True
            log.info("killing run on request", run_id=run_id)
            if handle.container is not None:
                container = handle.container
                self._spawn(asyncio.to_thread(self.ctx.runtime.kill, container))

    async def _stop_runs(self) -> None:
        """Kill every running container and wait (bounded) for the runs to be reported."""
        assert self.ctx is not None
        for handle in list(self.handles.values()):
            handle.stopping = True
            if handle.container is not None:
                await asyncio.to_thread(self.ctx.runtime.kill, handle.container)
        pending = list(self._tasks.values())
        if pending:
            _done, still = await asyncio.wait(pending, timeout=_STOP_GRACE_SECONDS)
            for task in still:
                task.cancel()
