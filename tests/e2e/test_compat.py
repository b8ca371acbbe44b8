"""Compatibility with the real vantage6 4.15.2 packages, unmodified, as our peers."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from tests.fixtures.federation import Federation
from tests.fixtures.reference import ReferencePython
from v6flow.wire import result_from_wire

SCRIPT = (Path(__file__).parent / "reference_user_client.py").read_text(encoding="utf-8")


def test_reference_user_client_creates_task_and_gets_results(
    federation: Federation, reference_client: ReferencePython
) -> None:
    """The unmodified vantage6-client 4.15.2 logs in, creates a task, waits and decodes results."""
    url = urlsplit(federation.server_url)
    out = reference_client.run_json(
        SCRIPT,
        f"{url.scheme}://{url.hostname}", str(url.port), federation.username, federation.password,
        str(federation.collaboration_id), ",".join(map(str, federation.organization_ids)),
        federation.test_image, json.dumps({"method": "column_stats", "kwargs": {"column": "age"}}),
    )

    expected = sorted(
        (int(s.count()), float(s.sum())) for s in (pd.read_csv(p)["age"].dropna()
                                                   for p in federation.csv_paths)
    )
    got = sorted((r["count"], r["sum"]) for r in out["results"])
    assert out["status"] == "completed"
    assert [c for c, _ in got] == [c for c, _ in expected]
    for (_, got_sum), (_, want_sum) in zip(got, expected, strict=True):
        assert abs(got_sum - want_sum) < 1e-9 * max(1.0, abs(want_sum))


def test_reference_algorithm_runs_unmodified_with_subtasks(
    federation: Federation, v6compat_image: str
) -> None:
    """A central function on vantage6-algorithm-tools 4.15.2 fans out, waits and combines."""
    task = federation.create_task(
        "central", image=v6compat_image, organization_ids=federation.organization_ids[:1],
        kwargs={"column": "bmi"}, name="v6compat-central",
    )
    runs = federation.wait_for_runs(task["id"], timeout=120)
    assert [r["status"] for r in runs] == ["completed"], [r.get("log") for r in runs]
    (item,) = federation.results(task["id"])
    result = result_from_wire(item["result"])

    pooled = pd.concat(pd.read_csv(p) for p in federation.csv_paths)["bmi"].dropna()
    assert result["count"] == int(pooled.count())
    assert abs(result["mean"] - float(pooled.mean())) < 1e-9

    subtask = federation.get(f"task/{result['subtask_id']}")
    assert subtask["job_id"] == task["job_id"]
    assert subtask["parent"]["id"] == task["id"]
    sub_runs = federation.runs(subtask["id"])
    assert sorted(r["organization"]["id"] for r in sub_runs) == sorted(federation.organization_ids)
