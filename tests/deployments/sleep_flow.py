"""A deployable test flow whose partial runs long: ``sleep(seconds)`` of the basic test image
at every organization (tests/algorithms/basic), for the cancellation test of a deployment.

Deployed by tests/deployments/test_cancel_deployment.py from ``sleep.prefect.yaml``; the
flow-run process imports it from this checkout (pull step ``set_working_directory``).
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from prefect_v6flow.credentials import V6flowServerCredentials
from v6flow.prefect import kill_on_cancellation, run_partial


@flow(name="sleep-everywhere", persist_result=False,
      on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
async def sleep_everywhere(collaboration_id: Annotated[int, Field(ge=1)],
                           credentials_block: str, image: str,
                           seconds: Annotated[float, Field(gt=0)] = 120.0) -> dict[int, Any]:
    """Every organization sleeps ``seconds`` in its container; returns the seconds slept."""
    credentials = await V6flowServerCredentials.aload(credentials_block)
    return await run_partial(credentials, collaboration_id, "sleep", image=image,
                             args=[seconds])
