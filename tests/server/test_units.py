"""Pure parts of the server: the event bus and the permission tables (no process needed)."""

from __future__ import annotations

import threading

from v6flow_server.auth.permissions import (
    COLLABORATION_ADMIN_RULES,
    CONTAINER_RULES,
    NODE_RULES,
    ORGANIZATION_ADMIN_RULES,
    RESEARCHER_RULES,
    ROOT_RULES,
    RULE_TABLE,
    VIEWER_RULES,
    Operation,
    Resource,
    Scope,
    allows,
    rule_key,
)
from v6flow_server.events import Event, EventName, InProcessEventBus, Outbox


async def test_bus_delivers_events_published_from_threads_to_matching_subscribers() -> None:
    """publish() from a worker thread reaches only the subscribers whose filter accepts."""
    bus = InProcessEventBus()
    await bus.start()
    async with bus.subscribe(lambda e: e.collaboration_id == 1) as mine, \
            bus.subscribe(lambda e: e.collaboration_id == 2) as other:
        outbox = Outbox()
        outbox.emit(EventName.NEW_TASK, collaboration_id=1, id=7, parent_id=None)
        thread = threading.Thread(target=outbox.flush_to, args=(bus,))
        thread.start()
        thread.join()
        received = await mine.get(timeout=2)
        assert received == Event(EventName.NEW_TASK, 1,
                                 {"id": 7, "parent_id": None, "collaboration_id": 1})
        assert await other.get(timeout=0.1) is None
    await bus.stop()


def test_event_wire_form() -> None:
    """SSE frames are 'event: <name>' + 'data: <json>' + blank line."""
    frame = Event(EventName.SYNC, 0, {}).to_sse()
    assert frame == "event: sync\ndata: {}\n\n"


def test_default_roles_nest_and_stay_inside_the_rule_table() -> None:
    """Viewer ⊂ Researcher ⊂ Organization Admin ⊂ Collaboration Admin ⊂ Root = table."""
    assert VIEWER_RULES < RESEARCHER_RULES < ORGANIZATION_ADMIN_RULES
    assert ORGANIZATION_ADMIN_RULES < COLLABORATION_ADMIN_RULES < ROOT_RULES
    assert frozenset(RULE_TABLE) == ROOT_RULES
    assert len(set(RULE_TABLE)) == len(RULE_TABLE)


def test_container_role_is_node_role_without_edits() -> None:
    """CONTRACT §6: the container role is the node role minus EDIT rules."""
    assert {r for r in NODE_RULES if r.operation is not Operation.EDIT} == CONTAINER_RULES
    assert allows(NODE_RULES, Resource.ORGANIZATION, Operation.EDIT, Scope.ORGANIZATION)
    assert not allows(CONTAINER_RULES, Resource.ORGANIZATION, Operation.EDIT, Scope.ORGANIZATION)


def test_wider_scopes_imply_narrower_ones() -> None:
    """A collaboration-wide rule covers the organization, not the globe."""
    rules = RESEARCHER_RULES
    assert allows(rules, Resource.TASK, Operation.CREATE, Scope.ORGANIZATION)
    assert allows(rules, Resource.TASK, Operation.CREATE, Scope.COLLABORATION)
    assert not allows(rules, Resource.TASK, Operation.CREATE, Scope.GLOBAL)


def test_rule_rows_map_back_to_keys() -> None:
    """Stored rows round-trip to keys; unknown rows are ignored, never guessed."""
    for key in RULE_TABLE:
        assert rule_key(key.resource.value, key.operation.value, key.scope.value) == key
    assert rule_key("spaceship", "v", "glo") is None
