"""Ids are never handed out twice, also on SQLite (whose default reuses the largest id).

A node remembers the runs it handled and a container token names its task and run: an id
that came back would make a node skip a new run and an old token name a new row.
"""

from __future__ import annotations

from tests.server.conftest import World


def test_a_deleted_newest_task_leaves_its_ids_behind(world: World) -> None:
    """After deleting the newest task, the next task and its runs get new ids."""
    # Prepare
    old = world.create_task()
    old_runs = {r["id"] for r in world.runs(old["id"])}
    world.ok("DELETE", f"/task/{old['id']}")
    # Execute
    new = world.create_task()
    new_runs = {r["id"] for r in world.runs(new["id"])}
    # Assert
    assert new["id"] > old["id"]
    assert min(new_runs) > max(old_runs)


def test_a_deleted_newest_node_leaves_its_id_behind(world: World) -> None:
    """A node deleted as the newest account does not give its id to the next one."""
    # Prepare: an organization in a collaboration of its own (the shared world keeps its
    # members), without a node yet
    org = world.ok("POST", "/organization", json={"name": f"ids-{world.org_ids[0]}-x"})
    collab = world.ok("POST", "/collaboration", json={"name": f"ids-collab-{org['id']}",
                                                      "organization_ids": [org["id"]]})
    node = world.ok("POST", "/node", json={"collaboration_id": collab["id"],
                                           "organization_id": org["id"]})
    world.ok("DELETE", f"/node/{node['id']}")
    # Execute
    again = world.ok("POST", "/node", json={"collaboration_id": collab["id"],
                                            "organization_id": org["id"]})
    # Assert
    assert again["id"] > node["id"]
