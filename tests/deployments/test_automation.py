"""A Prefect Automation reacts to ``v6flow.run.failed``: it calls a webhook we listen on.

Real local Prefect server (its triggers and actions services), a real Automation created
through the Prefect client API, a Webhook Block pointing at an HTTP listener of this test,
and a real fan-out of the summary flow over the 3 nodes where one organization fails: its
node admin set a malformed ``V6FLOW_MIN_CELL_COUNT``, so the partial refuses to run there.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.deployments.prefect_server import PrefectServer, prefect_api
from tests.flows.fixtures import node_algorithm_env
from tests.flows.researcher import Researcher
from v6flow.algorithm import MIN_CELL_COUNT_ENV
from v6flow.prefect import V6flowEvent

#: What the automation posts: Jinja over the triggering event.
PAYLOAD = ('{"event": "{{ event.event }}", "organization": "{{ event.resource.id }}", '
           '"status": "{{ event.payload.status }}", "task": {{ event.payload.task_id }}}')


@contextmanager
def webhook_listener() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 that queues the JSON bodies POSTed to it."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put({**json.loads(body or b"{}"), "_at": time.monotonic()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v6flow", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.docker
async def test_an_automation_on_run_failed_calls_a_webhook_naming_the_organization(
        prefect_server: PrefectServer, federation: Any, own_summary_image: str,
        researcher: Researcher) -> None:
    """Automation(v6flow.run.failed at one organization → CallWebhook): the webhook gets
    the failing organization, its run status and its task."""
    from prefect.automations import Automation
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from prefect.events.schemas.automations import EventTrigger, Posture

    from v6flow_flows.summary.flow import summary_statistics

    # Prepare
    node = federation.nodes[-1]
    with webhook_listener() as (url, received), prefect_api(prefect_server):
        webhook = Webhook(url=url, method="POST")  # type: ignore[arg-type]
        await webhook.asave(f"v6flow-hook-{uuid.uuid4().hex[:8]}")
        automation = await Automation(
            name=f"v6flow-run-failed-{uuid.uuid4().hex[:8]}",
            trigger=EventTrigger(
                expect={V6flowEvent.RUN_FAILED.value},
                match={"prefect.resource.id": f"v6flow.organization.{node.organization_id}"},
                posture=Posture.Reactive, threshold=1),
            actions=[CallWebhook(block_document_id=webhook._block_document_id,  # type: ignore[arg-type]
                                 payload=PAYLOAD)],
        ).acreate()
        # Execute
        with node_algorithm_env(federation, node, {MIN_CELL_COUNT_ENV: "five"}):
            started = time.monotonic()
            state = await summary_statistics(  # type: ignore[call-overload]
                federation=researcher.federation(federation.collaboration_id,
                                                 own_summary_image),
                quantiles=[], return_state=True)
            ended = time.monotonic()
            called = await asyncio.to_thread(_next, received, 60)
            if called is not None:  # pytest -s
                print(f"automation: webhook called {called['_at'] - started:.1f} s after the "
                      f"flow call began (the flow call took {ended - started:.1f} s)")
        await automation.adelete()
    # Assert
    assert state.is_failed(), state
    assert called is not None, "the automation did not call the webhook within 60 s"
    assert called["event"] == V6flowEvent.RUN_FAILED.value
    assert called["organization"] == f"v6flow.organization.{node.organization_id}"
    assert called["status"] == "crashed"
    runs = federation.get("run", task_id=called["task"])["data"]
    assert [r["organization"]["id"] for r in runs] == [node.organization_id]
    assert MIN_CELL_COUNT_ENV in (runs[0]["log"] or "")


def _next(received: queue.Queue[dict[str, Any]], timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    try:
        return received.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return None
