"""A node survives a server restart: it reconnects, re-syncs and keeps running tasks."""

from __future__ import annotations

import secrets
from pathlib import Path

import pandas as pd

from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import free_port, start_server
from v6flow.wire import result_from_wire


def test_node_reconnects_after_server_restart(tmp_path: Path, base_image: str,
                                              test_algorithm_image: str) -> None:
    """After the server restarts, the node's event stream reconnects and new tasks run."""
    # Prepare: a server of our own, one node
    port, password = free_port(), secrets.token_urlsafe(12)
    database_url = f"sqlite:///{tmp_path}/server.sqlite"
    server = start_server(database_url=database_url, root_password=password,
                          log_dir=tmp_path / "server", port=port)
    fed: Federation | None = None
    try:
        fed = create_federation(server_url=server.url, root_password=password,
                                directory=tmp_path / "federation", base_image=base_image,
                                test_image=test_algorithm_image, sizes=(40,))
        node = fed.nodes[0]
        # Execute: restart the server on the same port and database
        server.stop()
        server = start_server(database_url=database_url, root_password=password,
                              log_dir=tmp_path / "server", port=port)
        task = fed.create_task("row_count")
        (run,) = fed.wait_for_runs(task["id"], timeout=60)
        # Assert
        assert run["status"] == "completed", run["log"]
        (item,) = fed.results(task["id"])
        assert result_from_wire(item["result"]) == len(pd.read_csv(node.csv_path))
        assert node.proc is not None and node.proc.poll() is None
        assert node.log_text().count("event stream connected") >= 2
    finally:
        if fed is not None:
            shutdown_federation(fed)
        server.stop()
