"""Encrypted collaborations with the real vantage6 4.15.2 packages, unmodified, as our peers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from tests.fixtures.encrypted_federation import (
    create_encrypted_federation,
    keys_of,
    plaintext_traces,
)
from tests.fixtures.federation import Federation, shutdown_federation
from tests.fixtures.reference import ReferencePython
from tests.fixtures.server import ServerProcess
from v6flow.client import Client

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SCRIPT = (Path(__file__).parent / "reference_encrypted_client.py").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def enc(server: ServerProcess, base_image: str, test_algorithm_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """3 organizations with keys, an encrypted collaboration and 3 nodes with encryption."""
    fed = create_encrypted_federation(server_url=server.url, root_password=server.root_password,
                                      directory=tmp_path_factory.mktemp("encrypted-v4"),
                                      base_image=base_image, test_image=test_algorithm_image)
    yield fed
    shutdown_federation(fed)


def _run_v4(fed: Federation, reference: ReferencePython, image: str, input_: dict[str, Any],
            organizations: list[int]) -> dict[str, Any]:
    """The v4 UserClient of organization 0, with organization 0's key, creates and waits."""
    url = urlsplit(fed.server_url)
    out: dict[str, Any] = reference.run_json(
        SCRIPT, f"{url.scheme}://{url.hostname}", str(url.port), fed.username, fed.password,
        str(keys_of(fed)[fed.organization_ids[0]]), str(fed.collaboration_id),
        ",".join(map(str, organizations)), image, json.dumps(input_), timeout=300)
    return out


def _stored(fed: Federation, task_id: int) -> tuple[list[str], list[str]]:
    """The inputs and results the server holds for a task."""
    runs = fed.get("run", task_id=task_id, include="input", per_page=50)["data"]
    return [r["input"] for r in runs], [item["result"] for item in fed.results(task_id)]


def test_reference_user_client_creates_and_reads_encrypted_tasks(
        enc: Federation, reference_client: ReferencePython) -> None:
    """vantage6-client 4.15.2 with setup_encryption: v4 inputs, v4 results, the right sums;
    v6flow's client reads the same v4 results."""
    out = _run_v4(enc, reference_client, enc.test_image,
                  {"method": "column_stats", "kwargs": {"column": "age"}}, enc.organization_ids)
    expected = sorted((int(s.count()), float(s.sum())) for s in (
        pd.read_csv(p)["age"].dropna() for p in enc.csv_paths))
    got = sorted((r["count"], r["sum"]) for r in out["results"])
    assert out["status"] == "completed"
    assert [c for c, _ in got] == [c for c, _ in expected]
    for (_, got_sum), (_, want_sum) in zip(got, expected, strict=True):
        assert abs(got_sum - want_sum) < 1e-9 * max(1.0, abs(want_sum))
    inputs, results = _stored(enc, out["task_id"])
    assert all(text.count("$") == 2 for text in inputs + results)  # v4's key$iv$body
    with Client(enc.server_url, username=enc.username, password=enc.password,
                private_key=keys_of(enc)[enc.organization_ids[0]]) as ours:
        assert sorted(ours.result.from_task(out["task_id"]).values(),
                      key=lambda r: r["count"]) == sorted(out["results"], key=lambda r: r["count"])


def test_reference_algorithm_creates_encrypted_subtasks_through_the_proxy(
        enc: Federation, reference_client: ReferencePython, v6compat_image: str) -> None:
    """A vantage6-algorithm-tools 4.15.2 central function, started by the v4 UserClient, fans
    out through the node proxy: subtask inputs and results are encrypted, the sum is right."""
    org0 = enc.organization_ids[0]
    out = _run_v4(enc, reference_client, v6compat_image,
                  {"method": "central", "kwargs": {"column": "bmi"}}, [org0])
    assert out["status"] == "completed", out
    (result,) = out["results"]
    pooled = pd.concat(pd.read_csv(p) for p in enc.csv_paths)["bmi"].dropna()
    assert result["count"] == int(pooled.count())
    assert abs(result["mean"] - float(pooled.mean())) < 1e-9
    subtask = enc.get(f"task/{result['subtask_id']}")
    assert subtask["parent"]["id"] == out["task_id"]
    assert subtask["init_org"]["id"] == org0
    inputs, results = _stored(enc, subtask["id"])
    assert len(inputs) == len(enc.organization_ids)
    assert all(text.startswith("v6flow-aead-1.") for text in inputs + results)
    central_inputs, central_results = _stored(enc, out["task_id"])
    assert all(text.count("$") == 2 for text in central_inputs + central_results)


def test_reference_client_data_never_reaches_the_server_in_clear(
        enc: Federation, reference_client: ReferencePython, server: ServerProcess) -> None:
    """A marker sent and returned by the v4 client is nowhere in the server's database or log."""
    marker = f"v4-secret-{uuid.uuid4().hex}"
    out = _run_v4(enc, reference_client, enc.test_image,
                  {"method": "echo", "args": [{"diagnosis": marker}]}, enc.organization_ids)
    assert out["results"] == [{"diagnosis": marker}] * len(enc.organization_ids)
    assert plaintext_traces(server.database_url, server.log_text(), marker) == []
