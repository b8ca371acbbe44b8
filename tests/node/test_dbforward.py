"""Database forwards of the node (v6flow_node.runtime.dbforward) without Docker: plan and pipes."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx

from v6flow.sidecar import parse_forward
from v6flow_node.runtime.dbforward import DatabaseForwarder, plan_forwards
from v6flow_node.settings import Database


def _db(label: str, kind: str, uri: str) -> Database:
    return Database.model_validate({"label": label, "type": kind, "uri": uri})


def test_plan_shares_one_forward_per_server_and_maps_names() -> None:
    """One forward per host:port; names keep their URI (mapped in /etc/hosts), addresses and
    localhost are replaced by the forward's loopback address."""
    # Prepare
    dbs = [_db("a", "sql", "postgresql://u:pw@db.example/a"),
           _db("b", "sql", "postgresql://u@db.example:5432/b"),
           _db("c", "sparql", "http://10.1.2.3:7878/query"),
           _db("d", "sql", "postgresql://u@localhost:5433/d"),
           _db("e", "other", "jdbc:postgresql://db.example/e")]
    # Execute
    plan = plan_forwards(dbs)
    # Assert
    assert [(f.host, f.port, f.address, f.labels) for f in plan.forwards] == [
        ("db.example", 5432, "127.100.0.1", ("a", "b")),
        ("10.1.2.3", 7878, "127.100.0.2", ("c",)),
        ("localhost", 5433, "127.100.0.3", ("d",))]
    assert plan.sidecar_hosts() == {"db.example": "127.100.0.1"}
    assert [plan.container_uri(db) for db in dbs] == [
        "postgresql://u@db.example/a", "postgresql://u@db.example:5432/b",
        "http://127.100.0.2:7878/query", "postgresql://u@127.100.0.3:5433/d",
        "jdbc:postgresql://db.example/e"]
    args = plan.sidecar_args("/proxy")
    assert [parse_forward(v) for v in args[1::2]] == [
        ("127.100.0.1", 5432, "/proxy/db-1.sock"), ("127.100.0.2", 7878, "/proxy/db-2.sock"),
        ("127.100.0.3", 5433, "/proxy/db-3.sock")]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every line with 'echo: <line>'."""
    while line := await reader.readline():
        writer.write(b"echo: " + line)
        await writer.drain()
    writer.close()


async def test_forward_pipes_both_ways(tmp_path: Path) -> None:
    """Bytes written to a forward's socket reach the server, and its answer comes back."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    plan = plan_forwards([_db("a", "sql", f"mysql://u@127.0.0.1:{port}/x")])
    forwarder = DatabaseForwarder(plan, tmp_path)
    await forwarder.start()
    try:
        reader, writer = await asyncio.open_unix_connection(tmp_path / "db-1.sock")
        writer.write(b"hello\n")
        answer = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
    finally:
        await forwarder.stop()
        echo.close()
    assert answer == b"echo: hello\n"
    assert not (tmp_path / "db-1.sock").exists()


async def test_unreachable_sparql_server_answers_502_with_the_reason(tmp_path: Path) -> None:
    """A sparql forward whose server refuses answers HTTP 502 naming label and server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    plan = plan_forwards([_db("rdf", "sparql", f"http://127.0.0.1:{port}/query")])
    forwarder = DatabaseForwarder(plan, tmp_path)
    await forwarder.start()
    try:
        transport = httpx.AsyncHTTPTransport(uds=str(tmp_path / "db-1.sock"))
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post("http://x/query", data={"query": "SELECT * {}"})
    finally:
        await forwarder.stop()
    assert response.status_code == 502
    assert f"cannot reach the database server of rdf at 127.0.0.1:{port}" in response.text
