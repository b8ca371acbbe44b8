"""Artifacts of a fan-out inside a flow run: progress as organizations finish, status table.

Only the last artifact writes sit on the fan-out's critical path: the progress artifact is
created in the background once the first server task exists (:meth:`FanOutReport.start`),
progress updates are written by one background writer that coalesces them (only the newest
value is sent, in order), and at the end the final progress value and the status table are
written concurrently (instead of ``2 + n`` writes one after another before). Both are
awaited, so the artifacts are final when ``run_partial`` returns (before the flow run
ends). Artifact failures are logged, never raised: bookkeeping must not fail the analysis.

Each row of the status table links its server task (:func:`task_link`): to the web UI's
``/tasks/<id>`` when ``V6FLOW_UI_URL`` is set, else to the API's ``/task/<id>``. The other
way round, the server records the flow run with each task (``task.flow_run_id``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable
from typing import Any
from uuid import UUID

import anyio
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from v6flow.client.federated import FanOutTracker
from v6flow.prefect.logging import Logger, run_logger

#: Environment variable with the web UI's root URL (task links go to ``<ui>/tasks/<id>``).
UI_URL_ENV = "V6FLOW_UI_URL"


def task_link(server_url: str, task_id: int, ui_url: str | None = None) -> str:
    """Where a person opens a server task: ``<ui>/tasks/<id>`` when the web UI's address is
    known (``ui_url``, default the ``V6FLOW_UI_URL`` environment variable), else the API's
    ``<server>/task/<id>`` (``server_url`` is the API root, ending in ``/api``)."""
    ui = ui_url if ui_url is not None else os.environ.get(UI_URL_ENV, "")
    if ui:
        return f"{ui.rstrip('/')}/tasks/{task_id}"
    return f"{server_url.rstrip('/')}/task/{task_id}"


def status_rows(tracker: FanOutTracker, server_url: str | None = None) -> list[dict[str, Any]]:
    """The status table: one row per organization, with a link to its (last) server task."""
    rows = []
    for outcome in tracker.outcomes.values():
        row = outcome.row()
        if server_url is not None:
            row["task"] = (task_link(server_url, outcome.task_id)
                           if outcome.task_id is not None else "")
        rows.append(row)
    return rows


def artifact_key(method: str, suffix: str) -> str:
    """A Prefect artifact key (lowercase with dashes) for a method: ``<method>-<suffix>``."""
    stem = re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-") or "partial"
    return f"{stem}-{suffix}"


class FanOutReport:
    """The progress artifact (updated per finished organization) and the status table.

    Use: :meth:`start` (returns at once; optional, :meth:`progress` and :meth:`finish`
    start it too), :meth:`progress` from the fan-out's ``on_done`` (returns at once),
    :meth:`finish` at the end (awaits the last writes).
    """

    def __init__(self, method: str, total: int, *, enabled: bool = True) -> None:
        self.method = method
        self.total = total
        self.enabled = enabled
        self.progress_id: UUID | None = None
        self._logger: Logger = run_logger()
        self._created: asyncio.Future[UUID | None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._wanted = 0.0
        self._written = 0.0

    def start(self) -> asyncio.Future[UUID | None] | None:
        """Create the progress artifact at 0 % in the background (once); its future."""
        if self.enabled and self._created is None:
            self._created = asyncio.ensure_future(self._create())
        return self._created

    async def _create(self) -> UUID | None:
        try:
            self.progress_id = await acreate_progress_artifact(
                progress=0.0, key=artifact_key(self.method, "progress"),
                description=f"Organizations finished for {self.method} (of {self.total})")
        except Exception as exc:
            self._logger.warning("cannot create the progress artifact: %s", exc)
        return self.progress_id

    def progress(self, finished: int, total: int) -> None:
        """Set the progress to ``finished / total`` (in %) without waiting for the API."""
        if not self.enabled or not total:
            return
        self.start()
        self._wanted = 100.0 * finished / total
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_progress())

    async def _write_progress(self) -> None:
        """Send the newest wanted progress value until it is the one written."""
        assert self._created is not None
        artifact_id = await self._created
        while artifact_id is not None and self._wanted != self._written:
            value = self._wanted
            try:
                await aupdate_progress_artifact(artifact_id=artifact_id, progress=value)
            except Exception as exc:
                self._logger.warning("cannot update the progress artifact: %s", exc)
                return
            self._written = value

    async def finish(self, tracker: FanOutTracker, server_url: str | None = None) -> None:
        """Write the last progress value and the status table (concurrently); shielded
        from cancellation, so a cancelled fan-out still leaves its table."""
        if not self.enabled:
            return
        with anyio.CancelScope(shield=True):
            created = self.start()  # no server task and nothing finished: created now
            writes: list[Awaitable[object]] = [self._table(tracker, server_url)]
            last = self._writer if self._writer is not None else created
            if last is not None:
                writes.append(last)
            await asyncio.gather(*writes, return_exceptions=True)

    async def _table(self, tracker: FanOutTracker, server_url: str | None) -> None:
        """The per-organization status table (organization, run id, status, ..., task)."""
        try:
            await acreate_table_artifact(
                key=artifact_key(self.method, "organizations"),
                table=status_rows(tracker, server_url),
                description=f"Per-organization status of {self.method}")
        except Exception as exc:  # never hide the fan-out's own outcome
            self._logger.warning("cannot create the status table artifact: %s", exc)
