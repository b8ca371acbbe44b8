"""Artifacts of a fan-out inside a flow run: progress as organizations finish, status table."""

from __future__ import annotations

import re
from uuid import UUID

from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from v6flow.client.federated import FanOutTracker
from v6flow.prefect.logging import run_logger


def artifact_key(method: str, suffix: str) -> str:
    """A Prefect artifact key (lowercase with dashes) for a method: ``<method>-<suffix>``."""
    stem = re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-") or "partial"
    return f"{stem}-{suffix}"


class FanOutReport:
    """The progress artifact (updated per finished organization) and the status table."""

    def __init__(self, method: str, total: int, *, enabled: bool = True) -> None:
        self.method = method
        self.total = total
        self.enabled = enabled
        self.progress_id: UUID | None = None

    async def start(self) -> None:
        """Create the progress artifact at 0 %."""
        if not self.enabled:
            return
        self.progress_id = await acreate_progress_artifact(
            progress=0.0, key=artifact_key(self.method, "progress"),
            description=f"Organizations finished for {self.method} (of {self.total})")

    async def progress(self, finished: int, total: int) -> None:
        """Set the progress to ``finished / total`` (in %); a failure is only logged."""
        if self.progress_id is not None and total:
            try:
                await aupdate_progress_artifact(artifact_id=self.progress_id,
                                                progress=100.0 * finished / total)
            except Exception as exc:  # bookkeeping must not fail the analysis
                run_logger().warning("cannot update the progress artifact: %s", exc)

    async def table(self, tracker: FanOutTracker) -> None:
        """The per-organization status table (organization, run id, status, ...)."""
        if not self.enabled:
            return
        try:
            await acreate_table_artifact(
                key=artifact_key(self.method, "organizations"), table=tracker.rows(),
                description=f"Per-organization status of {self.method}")
        except Exception as exc:  # never hide the fan-out's own outcome
            run_logger().warning("cannot create the status table artifact: %s", exc)
