"""The summary statistics central function as a Prefect flow.

Each organization computes exact partial aggregates (``v6flow_summary.summary`` in the
``v6flow/summary`` image); the flow merges them into the federated table.

Examples:
    >>> import asyncio
    >>> from flows.summary.flow import ServerParameters, summary_statistics
    >>> asyncio.run(summary_statistics(collaboration_id=1, server=ServerParameters(
    ...     url="http://127.0.0.1:7601/api", username="root", password="…")))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext
from pydantic import BaseModel, Field, SecretStr

from blocks.credentials import V6flowServerCredentials
from flows.summary import SUMMARY_IMAGE
from flows.summary.combine import combine_summaries, table_rows
from v6flow.prefect import run_logger, run_partial


class ServerParameters(BaseModel):
    """Server and login given as flow parameters (instead of a saved credentials Block)."""

    url: str = Field(..., pattern=r"^https?://", description="API root, ending in /api.")
    username: str = Field(..., min_length=1)
    password: SecretStr

    def credentials(self) -> V6flowServerCredentials:
        """The same as an (unsaved) credentials Block."""
        return V6flowServerCredentials(url=self.url, username=self.username,
                                       password=self.password)


class DatabaseRequest(BaseModel):
    """One database a task asks the nodes for."""

    label: str = Field(default="default", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: str | None = None
    sheet_name: str | None = None

    def wire(self) -> dict[str, Any]:
        """The ``databases[]`` item of ``POST /task``."""
        return self.model_dump(exclude_none=True)


PositiveId = Annotated[int, Field(ge=1)]


async def _credentials(server: ServerParameters | None,
                       credentials_block: str | None) -> V6flowServerCredentials:
    if server is not None:
        return server.credentials()
    if credentials_block is not None:
        block = await V6flowServerCredentials.aload(credentials_block)
        return block
    raise ValueError("give either 'server' or 'credentials_block'")


@flow(name="summary-statistics", log_prints=False, persist_result=False)
async def summary_statistics(
    collaboration_id: PositiveId,
    server: ServerParameters | None = None,
    credentials_block: str | None = None,
    organizations: list[PositiveId] | None = None,
    columns: list[Annotated[str, Field(min_length=1)]] | None = None,
    image: Annotated[str, Field(min_length=1)] = SUMMARY_IMAGE,
    databases: list[DatabaseRequest] | None = None,
    retries: Annotated[int, Field(ge=0, le=10)] = 1,
    timeout_seconds: Annotated[float, Field(gt=0)] | None = 600.0,
) -> dict[str, Any]:
    """Federated summary statistics of a collaboration's tables.

    Args:
        collaboration_id: collaboration to run in.
        server: server URL and login (for ad-hoc runs such as the demo).
        credentials_block: name of a saved ``V6flowServerCredentials`` Block (deployments).
        organizations: organization ids; all members of the collaboration when omitted.
        columns: columns to summarise; all when omitted.
        image: algorithm image with the ``v6flow_summary`` partial.
        databases: database requests (default ``[{"label": "default"}]``).
        retries: retries per organization.
        timeout_seconds: per organization attempt; the server task is killed on expiry.

    Returns:
        ``{"rows", "organizations", "numeric": {col: {count, missing, mean, std, min, max}},
        "categorical": {col: {missing, counts}}}``.
    """
    logger = run_logger()
    credentials = await _credentials(server, credentials_block)
    kwargs: dict[str, Any] = {} if columns is None else {"columns": list(columns)}
    partials = await run_partial(
        credentials, collaboration_id, "summary", image=image, organizations=organizations,
        kwargs=kwargs, databases=[db.wire() for db in databases] if databases else None,
        retries=retries, timeout_seconds=timeout_seconds,
    )
    table = combine_summaries(partials)
    logger.info("summary of %d rows from %d organizations", table["rows"],
                table["organizations"])
    if FlowRunContext.get() is not None:  # not when the logic runs alone (``.fn()``)
        await acreate_table_artifact(key="summary-statistics", table=table_rows(table),
                                     description="Federated summary statistics")
    return table
