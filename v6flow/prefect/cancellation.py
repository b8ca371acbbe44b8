"""Killing a flow run's server tasks when the flow run is cancelled.

- Cancelled in the Prefect API/UI while the flow runs in this process (a script, a test):
  the fan-out watches the flow run's state (:func:`cancelling`), stops, kills its server
  tasks, moves the flow run to Cancelled and raises ``prefect.exceptions.Abort``.
- The flow coroutine cancelled (``asyncio``, a Prefect timeout): each organization's wait
  is cancelled and kills its task (``POST /kill/task``) before it ends.
- A deployed flow run (``serve``/worker) cancelled from the UI/API: Prefect's runner stops
  the flow-run *process*, then runs the flow's ``on_cancellation`` hooks in the runner
  process, where no wait is left to clean up. :func:`kill_on_cancellation` is that hook:
  it kills the server tasks the flow run recorded (this process's registry, plus the
  flow-run labels ``v6flow.server-task.<id>``, written in the background as the tasks are
  created, batched, off the fan-out's critical path), logging in through the saved Block
  the flow's ``federation`` parameter names when the flow's client is gone.

Examples:
    >>> @flow(on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
    ... async def my_central_function(credentials_block: str, ...): ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import structlog
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.states import Cancelled

from v6flow.client import AsyncClient
from v6flow.client.federated import FanOutTracker, kill_tasks
from v6flow.errors import V6FlowError

LABEL_PREFIX = "v6flow.server-task."
#: Seconds between reads of the flow run's state while a fan-out runs.
CANCEL_POLL_INTERVAL = 0.5
_log = structlog.get_logger("v6flow.prefect")

#: flow run id → (client, tracker) of every fan-out running in this process.
_RUNNING: dict[UUID, list[tuple[AsyncClient, FanOutTracker]]] = {}
#: flow run id → the background writer of its server-task labels (one per flow run, so its
#: writes are serial: the API merges labels read-modify-write, concurrent updates lose keys).
_LABEL_WRITERS: dict[UUID, _LabelWriter] = {}
#: flow run id → server tasks of finished fan-outs that ended in this process (bounded).
_SETTLED: OrderedDict[UUID, set[int]] = OrderedDict()
_SETTLED_MAX = 1000


class _LabelWriter:
    """Labels a flow run with its server tasks in the background, batching what is pending.

    The fan-out does not wait for the Prefect API (a label write can take a 2 s back-off
    when the API answers 503): ids created while a write is in flight go out together in
    the next one. Failures are logged, not raised.
    """

    def __init__(self, flow_run_id: UUID) -> None:
        self.flow_run_id = flow_run_id
        self.pending: dict[int, str] = {}
        self.after: set[asyncio.Future[Any]] = set()
        self.future: asyncio.Future[None] | None = None

    def add(self, task_id: int, server_url: str,
            after: asyncio.Future[Any] | None = None) -> None:
        """Queue ``task_id`` (written once ``after`` is done) and make sure a write is
        under way."""
        self.pending[task_id] = server_url
        if after is not None and not after.done():
            self.after.add(after)
        if self.future is None or self.future.done():
            self.future = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self.pending:
            if self.after:  # asyncio.wait: cancelling this writer leaves them running
                waits, self.after = self.after, set()
                await asyncio.wait(waits)
            batch, self.pending = self.pending, {}
            await _write_labels(self.flow_run_id, batch)

    def close(self) -> None:
        """Drop unwritten labels (their tasks have ended: the hook need not kill them)."""
        self.pending.clear()
        self.after.clear()
        if self.future is not None and not self.future.done():
            self.future.cancel()


@contextlib.contextmanager
def registered(flow_run_id: UUID, client: AsyncClient, tracker: FanOutTracker
               ) -> Iterator[None]:
    """Make a fan-out's open server tasks known to :func:`kill_on_cancellation`."""
    entry = (client, tracker)
    _RUNNING.setdefault(flow_run_id, []).append(entry)
    _LABEL_WRITERS.setdefault(flow_run_id, _LabelWriter(flow_run_id))
    try:
        yield
    finally:
        _SETTLED.setdefault(flow_run_id, set()).update(
            set(tracker.task_ids) - tracker.open_tasks)
        _SETTLED.move_to_end(flow_run_id)
        while len(_SETTLED) > _SETTLED_MAX:
            _SETTLED.popitem(last=False)
        entries = _RUNNING.get(flow_run_id, [])
        if entry in entries:
            entries.remove(entry)
        if not entries:
            _RUNNING.pop(flow_run_id, None)
            writer = _LABEL_WRITERS.pop(flow_run_id, None)
            if writer is not None:
                writer.close()


async def record_server_task(flow_run_id: UUID, task_id: int, server_url: str, *,
                             after: asyncio.Future[Any] | None = None) -> None:
    """Label the flow run with a server task it created (read back by the hook).

    Inside :func:`registered` this returns at once and the label is written in the
    background (batched), once ``after`` (another Prefect write of the fan-out) is done:
    two concurrent writes make a SQLite Prefect server answer 503, which the client
    retries only after 2 s. Outside it the label is written now. A failure is logged, not
    raised: the fan-out must not fail for its bookkeeping.
    """
    writer = _LABEL_WRITERS.get(flow_run_id)
    if writer is not None:
        writer.add(task_id, server_url, after)
    else:
        await _write_labels(flow_run_id, {task_id: server_url})


async def _write_labels(flow_run_id: UUID, tasks: dict[int, str]) -> None:
    try:
        async with get_client() as prefect:
            await prefect.update_flow_run_labels(
                flow_run_id, {f"{LABEL_PREFIX}{task_id}": url for task_id, url in tasks.items()})
    except Exception as exc:
        _log.warning("cannot label the flow run with its server tasks", tasks=sorted(tasks),
                     error=str(exc))


def recorded_server_tasks(labels: dict[str, Any] | None) -> dict[int, str]:
    """``{task_id: server_url}`` from a flow run's labels."""
    return {int(key[len(LABEL_PREFIX):]): str(value) for key, value in (labels or {}).items()
            if key.startswith(LABEL_PREFIX) and key[len(LABEL_PREFIX):].isdigit()}


async def cancelling(flow_run_id: UUID, interval: float = CANCEL_POLL_INTERVAL) -> None:
    """Return once the flow run is Cancelling or Cancelled in the Prefect API.

    Prefect's engine does not watch for that in-process (its runner does, and then stops
    the flow-run process); this lets a fan-out stop and kill its server tasks itself.
    Transient API errors are ignored (polled again).
    """
    async with get_client() as prefect:
        while True:
            await asyncio.sleep(interval)
            try:
                state = (await prefect.read_flow_run(flow_run_id)).state
            except Exception as exc:
                _log.debug("cannot read the flow run state", error=str(exc))
                continue
            if state is not None and (state.is_cancelling() or state.is_cancelled()):
                return


async def mark_cancelled(flow_run_id: UUID, message: str) -> None:
    """Move a Cancelling flow run to Cancelled (what the runner does after stopping it)."""
    async with get_client() as prefect:
        await prefect.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)


async def kill_on_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect flow hook (``on_cancellation``/``on_crashed``): kill the run's server tasks.

    Kills the open tasks of this process's fan-outs of ``flow_run`` and every task recorded
    in its labels that did not end in this process. Killing an already finished task
    changes nothing. Errors are logged, never raised (a hook must not hide the
    cancellation).
    """
    killed: set[int] = set()
    for client, tracker in list(_RUNNING.get(flow_run.id, [])):
        open_tasks = sorted(tracker.open_tasks)
        await kill_tasks(client, open_tasks)
        killed.update(open_tasks)
    labels: dict[str, Any] | None
    try:
        async with get_client() as prefect:
            labels = dict((await prefect.read_flow_run(flow_run.id)).labels)
    except Exception as exc:  # the Prefect API may be gone too
        _log.warning("cannot read the flow run's recorded server tasks", error=str(exc))
        labels = getattr(flow_run, "labels", None)
    done = killed | _SETTLED.get(flow_run.id, set())
    recorded = {t: url for t, url in recorded_server_tasks(labels).items() if t not in done}
    if not recorded:
        return
    fresh = await _client_from_parameters(getattr(flow_run, "parameters", None) or {})
    if fresh is None:
        _log.warning("no credentials to kill the server tasks", tasks=sorted(recorded))
        return
    async with fresh:
        await kill_tasks(fresh, sorted(recorded))


async def _client_from_parameters(parameters: dict[str, Any]) -> AsyncClient | None:
    """A client from the flow's saved Blocks: ``credentials_block``, or the credentials of a
    ``collaboration_block``, at the top level or inside the ``federation`` parameter."""
    places = [parameters]
    if isinstance(parameters.get("federation"), dict):
        places.insert(0, parameters["federation"])
    for place in places:
        slug, name = "v6flow-server-credentials", place.get("credentials_block")
        if not isinstance(name, str):
            slug, name = "v6flow-collaboration", place.get("collaboration_block")
        if not isinstance(name, str):
            continue
        try:
            block: Any = await Block.aload(f"{slug}/{name}")
            if slug == "v6flow-collaboration":
                block = block.credentials
            client = block.get_async_client()
        except (ValueError, AttributeError, V6FlowError) as exc:
            _log.warning("cannot load the credentials block", block=name, error=str(exc))
            return None
        return client if isinstance(client, AsyncClient) else None
    return None
