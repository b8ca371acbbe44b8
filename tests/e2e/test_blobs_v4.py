"""The unmodified vantage6 4.15.2 packages with and without a blob store on the server.

With a store, the 4.15.2 UserClient uploads every input to ``POST /blobstream`` and names it
by UUID, and reads blob results through ``GET /blobstream/<uuid>``; the 4.15.2 algorithm
tools upload subtask inputs and read subtask results through the node proxy. Our nodes send
every result to the store here (threshold 0, as a 4.x node does). Without a store, the same
client works inline (``blob_store_enabled`` false).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.reference import ReferencePython
from tests.fixtures.server import ServerProcess, start_server
from v6flow.wire import result_from_wire

SCRIPT = (Path(__file__).parent / "reference_user_client.py").read_text(encoding="utf-8")
STATS_INPUT = {"method": "column_stats", "kwargs": {"column": "age"}}


@pytest.fixture(scope="module")
def blob_federation(tmp_path_factory: pytest.TempPathFactory, base_image: str,
                    test_algorithm_image: str) -> Iterator[Federation]:
    """A server with a local blob store (every result goes there) and three nodes."""
    directory = tmp_path_factory.mktemp("v4-blobs")
    server: ServerProcess = start_server(
        database_url=f"sqlite:///{directory}/server.sqlite",
        root_password=secrets.token_urlsafe(12), log_dir=directory, extra_env={
            "V6FLOW_SERVER_BLOBS__BACKEND": "local",
            "V6FLOW_SERVER_BLOBS__PATH": str(directory / "blobs"),
            "V6FLOW_SERVER_BLOBS__THRESHOLD_BYTES": "0"})
    fed = create_federation(server_url=server.url, root_password=server.root_password,
                            directory=directory, base_image=base_image,
                            test_image=test_algorithm_image)
    yield fed
    try:
        shutdown_federation(fed)
    finally:
        server.stop()


def run_reference_client(fed: Federation, client: ReferencePython) -> dict[str, Any]:
    """The reference UserClient script: create a column_stats task, wait, decode results."""
    url = urlsplit(fed.server_url)
    out: dict[str, Any] = client.run_json(
        SCRIPT, f"{url.scheme}://{url.hostname}", str(url.port), fed.username, fed.password,
        str(fed.collaboration_id), ",".join(map(str, fed.organization_ids)), fed.test_image,
        json.dumps(STATS_INPUT))
    return out


def expected_stats(fed: Federation) -> list[tuple[int, float]]:
    """(count, sum) of ``age`` per organization, from the CSVs themselves."""
    return sorted((int(s.count()), float(s.sum()))
                  for s in (pd.read_csv(p)["age"].dropna() for p in fed.csv_paths))


def test_reference_user_client_uses_the_blob_store(blob_federation: Federation,
                                                   reference_client: ReferencePython) -> None:
    """4.15.2 UserClient: inputs uploaded as blobs, blob results downloaded and decoded."""
    fed = blob_federation
    out = run_reference_client(fed, reference_client)
    runs = fed.runs(out["task_id"])
    results = fed.results(out["task_id"])
    got = sorted((r["count"], r["sum"]) for r in out["results"])
    assert out["status"] == "completed"
    assert [c for c, _ in got] == [c for c, _ in expected_stats(fed)]
    for (_, got_sum), (_, want_sum) in zip(got, expected_stats(fed), strict=True):
        assert abs(got_sum - want_sum) < 1e-9 * max(1.0, abs(want_sum))
    assert all(run["blob_storage_used"] for run in runs)
    assert all(item["blob_storage_used"] for item in results)


def test_reference_algorithm_tools_use_the_blob_store_through_the_proxy(
        blob_federation: Federation, v6compat_image: str) -> None:
    """4.15.2 algorithm tools: subtask inputs and results go through the proxy as blobs."""
    fed = blob_federation
    task = fed.create_task("central", image=v6compat_image,
                           organization_ids=fed.organization_ids[:1], kwargs={"column": "bmi"},
                           name="v6compat-blobs")
    runs = fed.wait_for_runs(task["id"], timeout=180)
    assert [r["status"] for r in runs] == ["completed"], [r.get("log") for r in runs]
    (item,) = fed.results(task["id"])
    blob = fed.request("GET", f"blobstream/{item['result']}")  # base64 of the JSON, as v4
    result = result_from_wire(blob.content.decode("ascii"))
    pooled = pd.concat(pd.read_csv(p) for p in fed.csv_paths)["bmi"].dropna()
    sub_runs = fed.runs(result["subtask_id"])
    assert item["blob_storage_used"] is True
    assert result["count"] == int(pooled.count())
    assert abs(result["mean"] - float(pooled.mean())) < 1e-9
    assert len(sub_runs) == len(fed.organization_ids)
    assert all(run["blob_storage_used"] for run in sub_runs)
    assert all(r["blob_storage_used"] for r in fed.results(result["subtask_id"]))


def test_reference_user_client_works_without_a_blob_store(
        federation: Federation, reference_client: ReferencePython) -> None:
    """No store (the default): the same client sends inputs inline and reads inline results."""
    out = run_reference_client(federation, reference_client)
    runs = federation.runs(out["task_id"])
    results = federation.results(out["task_id"])
    got = sorted((r["count"], r["sum"]) for r in out["results"])
    assert out["status"] == "completed"
    assert [c for c, _ in got] == [c for c, _ in expected_stats(federation)]
    assert not any(run["blob_storage_used"] for run in runs)
    assert not any(item["blob_storage_used"] for item in results)
