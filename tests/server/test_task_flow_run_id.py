"""``task.flow_run_id``: the Prefect flow run that created a task (issue 12, part 4)."""

from __future__ import annotations

import uuid

from tests.server.conftest import World


def test_flow_run_id_is_stored_and_answered_in_canonical_form(world: World) -> None:
    """POST /task with a flow run id (upper case) → GET /task/<id> answers it lowercase."""
    flow_run = uuid.uuid4()
    created = world.create_task(flow_run_id=str(flow_run).upper())
    fetched = world.ok("GET", f"/task/{created['id']}")
    assert created["flow_run_id"] == fetched["flow_run_id"] == str(flow_run)


def test_a_task_without_flow_run_id_answers_null(world: World) -> None:
    """v4 clients send no flow run id: the key is there, null."""
    created = world.create_task()
    assert created["flow_run_id"] is None


def test_a_flow_run_id_that_is_no_uuid_is_400_naming_the_field(world: World) -> None:
    """Bad input is a 400 naming ``flow_run_id``, never stored."""
    response = world.call("POST", "/task", world.researcher_token,
                          json=world.task_body(flow_run_id="not-a-uuid"))
    assert response.status_code == 400, response.text
    assert "flow_run_id" in response.text
