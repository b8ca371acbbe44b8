"""Many concurrent requests on one server process with SQLite (more than its worker threads)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import World, auth, build_world

#: Concurrent requests: well above the 40 worker threads of the server's thread pool.
CONCURRENT = 150


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world on a server of its own (SQLite, short lock timeout: a stall fails fast)."""
    directory: Path = tmp_path_factory.mktemp("concurrency")
    proc: ServerProcess = start_server(
        database_url=f"sqlite:///{directory}/server.sqlite",
        root_password=secrets.token_urlsafe(12), log_dir=directory,
        extra_env={"V6FLOW_SERVER_SQLITE_BUSY_TIMEOUT_MS": "10000"})
    yield build_world(proc)
    proc.stop()


def test_more_concurrent_writes_than_worker_threads_all_succeed(sqlite_world: World) -> None:
    """150 task creations at once all answer 201: no transaction holds SQLite's write lock
    while it waits for a worker thread that every other request holds waiting for that lock."""
    # Prepare
    world = sqlite_world
    body = world.task_body(world.org_ids[:1])

    async def create_all() -> list[int]:
        limits = httpx.Limits(max_connections=CONCURRENT)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            answers = await asyncio.gather(*(
                client.post(f"{world.url}/task", json=body,
                            headers=auth(world.researcher_token))
                for _ in range(CONCURRENT)))
        return [answer.status_code for answer in answers]

    # Execute
    statuses = asyncio.run(create_all())
    # Assert
    assert statuses == [201] * CONCURRENT
    listed = world.ok("GET", "/task", params={"collaboration_id": world.collaboration_id,
                                              "per_page": 1})
    assert listed["data"]
