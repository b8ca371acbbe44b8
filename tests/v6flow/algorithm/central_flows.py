"""Flows the central-task tests run through the real wrapper (``V6FLOW_CENTRAL_FLOWS``)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from prefect import flow, task
from pydantic import Field


@task
async def double(value: int) -> int:
    return 2 * value


@flow(persist_result=False)
async def context_report(collaboration_id: int, image: str, value: int = 1) -> dict[str, Any]:
    """What the wrapper filled in from the token, and proof that a task ran in Prefect."""
    return {"collaboration_id": collaboration_id, "image": image,
            "doubled": await double(value), "prefect_home": os.environ["PREFECT_HOME"],
            "api_url": os.environ.get("PREFECT_API_URL")}


@flow(persist_result=False)
def needs_positive(count: Annotated[int, Field(ge=1)]) -> int:
    """Rejects ``count < 1`` (pydantic validation of flow parameters)."""
    return count


@flow(persist_result=False)
async def token_report(collaboration_id: int, image: str, value: int = 1) -> dict[str, Any]:
    """What the wrapper filled in from the token, without any Prefect task."""
    return {"collaboration_id": collaboration_id, "image": image, "doubled": 2 * value,
            "api_url": os.environ.get("PREFECT_API_URL")}
