"""The opt-in cache is keyed on the image digest (resolved once per call), not its name.

Real images: the suite's test algorithm image under a test-only tag, then that tag moved to
a rebuilt image (same code, a new digest). The nodes run whatever the tag points at.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import docker
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.context import FlowRunContext
from prefect.logging.handlers import APILogHandler

from tests.fixtures.docker import TEST_LABEL
from tests.flows.researcher import Researcher
from tests.prefect.test_prefect_fanout import _credentials, _last_task_id, _server_tasks
from v6flow.client.federated import FanOutTracker
from v6flow.prefect import caching, run_partial

pytestmark = pytest.mark.docker

UNREACHABLE_ENGINE = "unix:///nonexistent/v6flow-test-docker.sock"


@pytest.fixture
def test_tag(docker_client: Any, test_algorithm_image: str) -> Iterator[str]:
    """A test-only tag on the test algorithm image (removed afterwards with what it pointed
    to, unless that is the shared test image)."""
    tag = f"v6flow-test/basic:digest-{uuid4().hex[:10]}"
    docker_client.images.get(test_algorithm_image).tag(tag)
    yield tag
    shared = docker_client.images.get(test_algorithm_image).id
    try:
        current = docker_client.images.get(tag).id
        docker_client.images.remove(tag)
        if current != shared:
            docker_client.images.remove(current)
    except docker.errors.DockerException:
        pass


def _rebuild_as(docker_client: Any, tag: str) -> str:
    """Build a new image FROM ``tag`` (same code, one more label: a new digest), tag it
    ``tag``; its id."""
    dockerfile = f"FROM {tag}\nLABEL v6flow.test.variant={uuid4().hex}\n".encode()
    image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True,
                                          labels={TEST_LABEL: "1"}, pull=False)
    return str(image.id)


def _cached_echo(researcher: Researcher, federation: Any, org: int, outcomes: list[str],
                 run_ids: list[UUID], cache_key_extra: str | None = None) -> Any:
    @flow(name="digest-cache-test")
    async def cached(image: str, word: str) -> dict[int, Any]:
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        run_ids.append(context.flow_run.id)
        tracker = FanOutTracker()
        try:
            return await run_partial(_credentials(researcher), federation.collaboration_id,
                                     "echo", image=image, args=[word], organizations=[org],
                                     cache=timedelta(minutes=5),
                                     cache_key_extra=cache_key_extra, tracker=tracker)
        finally:
            outcomes.append(tracker.outcomes[org].status)
    return cached


async def _flow_run_messages(flow_run_id: UUID) -> list[str]:
    await APILogHandler.aflush()
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_digest_of_a_pinned_reference_needs_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """name@sha256:<hex> is its own digest; without one and without an engine: None."""
    # Prepare
    digest = "sha256:" + "ab" * 32
    monkeypatch.setenv("DOCKER_HOST", UNREACHABLE_ENGINE)
    # Execute
    pinned = caching.resolve_image_digest(f"registry:5000/v6flow/summary:0.1@{digest}")
    unknown = caching.resolve_image_digest("v6flow/summary:0.1.0")
    # Assert
    assert pinned == digest
    assert unknown is None
    assert caching.repository(f"registry:5000/v6flow/summary:0.1@{digest}") == (
        "registry:5000/v6flow/summary")
    assert caching.repository("registry:5000/summary") == "registry:5000/summary"


def test_local_digest_is_the_image_id_of_a_local_build(
        docker_client: Any, test_tag: str) -> None:
    """A locally built image has no registry digest: its image id keys the cache."""
    # Execute
    digest = caching.local_image_digest(test_tag)
    missing = caching.local_image_digest(f"v6flow-test/absent:{uuid4().hex}")
    # Assert
    assert digest == docker_client.images.get(test_tag).id
    assert digest is not None and digest.startswith("sha256:")
    assert missing is None


def test_unknown_digest_skips_caching_unless_cache_key_extra(
        caplog: pytest.LogCaptureFixture) -> None:
    """cache_options: no digest and no extra → no caching (warned); with extra → cached."""
    # Execute
    with caplog.at_level(logging.WARNING, logger="v6flow.prefect"):
        skipped = caching.cache_options(True, None, image="x/y:1", image_digest=None)
        by_name = caching.cache_options(True, "v7", image="x/y:1", image_digest=None)
        by_digest = caching.cache_options(timedelta(hours=1), None, image="x/y:1",
                                          image_digest="sha256:" + "0" * 64)
    # Assert
    assert skipped == {}
    assert by_name["cache_policy"].image_digest is None
    assert by_name["cache_policy"].cache_key_extra == "v7"
    assert by_digest["cache_policy"].image_digest == "sha256:" + "0" * 64
    assert by_digest["cache_expiration"] == timedelta(hours=1)
    assert any("caching is skipped" in r.getMessage() for r in caplog.records)
    assert any("cache_key_extra='v7'" in r.getMessage() for r in caplog.records)


async def test_new_digest_under_the_same_tag_misses_the_cache(
        federation: Any, researcher: Researcher, docker_client: Any, test_tag: str) -> None:
    """Same tag and digest: cached. The tag moved to a rebuilt image: runs again, then the
    new digest is cached too. Two server tasks in four flow runs."""
    # Prepare
    org = federation.organization_ids[0]
    outcomes: list[str] = []
    cached = _cached_echo(researcher, federation, org, outcomes, [])
    word = uuid4().hex  # this test's own arguments: no earlier cache entry can match
    before = _last_task_id(federation, researcher)
    # Execute
    first = await cached(test_tag, word)
    second = await cached(test_tag, word)
    old_id = docker_client.images.get(test_tag).id
    new_id = _rebuild_as(docker_client, test_tag)
    third = await cached(test_tag, word)
    fourth = await cached(test_tag, word)
    # Assert
    assert new_id != old_id
    assert first == second == third == fourth == {org: word}
    assert outcomes == ["completed", "cached", "completed", "cached"]
    assert _server_tasks(federation, researcher, before) == {org: 2}


async def test_without_a_digest_the_name_alone_is_not_trusted(
        federation: Any, test_algorithm_image: str, researcher: Researcher,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine to ask (and no pin): caching is skipped with a warning in the flow run's
    log; with cache_key_extra the name plus that string is the key."""
    # Prepare
    org = federation.organization_ids[1]
    monkeypatch.setenv("DOCKER_HOST", UNREACHABLE_ENGINE)  # this process's lookups only
    word = uuid4().hex
    outcomes: list[str] = []
    run_ids: list[UUID] = []
    plain = _cached_echo(researcher, federation, org, outcomes, run_ids)
    extra = _cached_echo(researcher, federation, org, outcomes, run_ids,
                         cache_key_extra=f"version-{word}")
    before = _last_task_id(federation, researcher)
    # Execute
    for call in (plain, plain, extra, extra):
        assert await call(test_algorithm_image, word) == {org: word}
    messages = await _flow_run_messages(run_ids[0])
    # Assert
    assert outcomes == ["completed", "completed", "completed", "cached"]
    assert _server_tasks(federation, researcher, before) == {org: 3}
    assert any("caching is skipped" in m for m in messages), messages
