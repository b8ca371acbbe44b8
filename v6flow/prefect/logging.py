"""Run loggers for v6flow tasks, and forwarding node log lines into them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from v6flow.client import LogLines

_FALLBACK = logging.getLogger("v6flow.prefect")

Logger = logging.Logger | logging.LoggerAdapter[Any]


def run_logger() -> Logger:
    """The Prefect run logger inside a flow/task run, else the ``v6flow.prefect`` logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return _FALLBACK


def log_forwarder(organization_name: str | None = None, logger: Logger | None = None
                  ) -> Callable[[LogLines], None]:
    """A callback that re-emits a node's live log lines, tagged ``[<org> run <id>]``.

    Without a name the organization id is used.
    """
    target = logger or run_logger()

    def forward(batch: LogLines) -> None:
        name = organization_name or f"organization {batch.organization_id}"
        for line in batch.lines:
            target.info("[%s run %d] %s", name, batch.run_id, line)

    return forward
