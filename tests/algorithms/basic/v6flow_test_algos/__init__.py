"""Functions the v6flow test suite runs in containers (image ``v6flow-test/basic:latest``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from v6flow.algorithm import AlgorithmClient, RunMetaData, algorithm_client, data, metadata
from v6flow.wire import input_to_wire, make_input

#: Env var names of the node→algorithm contract, reported by :func:`env_report`.
CONTRACT_ENV = (
    "INPUT_FILE", "OUTPUT_FILE", "TOKEN_FILE", "TEMPORARY_FOLDER", "HOST", "PORT", "API_PATH",
    "USER_REQUESTED_DATABASE_LABELS", "DB_LABELS", "DEFAULT_DATABASE_URI",
    "DEFAULT_DATABASE_TYPE", "PKG_NAME",
)


def echo(value: Any) -> Any:
    """Return the argument unchanged."""
    return value


@data(1)
def column_stats(df: Any, column: str) -> dict[str, float]:
    """Count, sum and sum of squares of one numeric column (NaN rows left out)."""
    values = df[column].dropna().astype(float)
    return {"count": int(values.count()), "sum": float(values.sum()),
            "sum_sq": float((values**2).sum())}


@data(1)
def row_count(df: Any) -> int:
    """Number of rows of the first requested database."""
    return len(df)


@data(2)
def two_row_counts(first: Any, second: Any) -> list[int]:
    """Row counts of the first two requested databases, in request order."""
    return [len(first), len(second)]


def boom(message: str) -> None:
    """Raise ValueError(message)."""
    raise ValueError(message)


def sleep(seconds: float) -> float:
    """Sleep, then return the seconds slept."""
    time.sleep(float(seconds))
    return float(seconds)


def tick(count: int, seconds: float = 0.5) -> int:
    """Print ``tick <i>`` every ``seconds``, ``count`` times: a log that grows while it runs."""
    for index in range(1, int(count) + 1):
        print(f"tick {index}", flush=True)
        time.sleep(float(seconds))
    return int(count)


def non_json() -> Any:
    """Return a set, which JSON cannot encode."""
    return {1, 2, 3}


def env_report() -> dict[str, Any]:
    """Which contract env vars are set, plus the network interfaces this container sees."""
    net = Path("/sys/class/net")
    interfaces = sorted(p.name for p in net.iterdir()) if net.is_dir() else []
    return {
        "set": sorted(name for name in CONTRACT_ENV if name in os.environ),
        "all_names": sorted(os.environ),
        "interfaces": interfaces,
    }


@metadata
def whoami(meta: RunMetaData) -> dict[str, Any]:
    """The run metadata as JSON."""
    return {"task_id": meta.task_id, "node_id": meta.node_id,
            "organization_id": meta.organization_id,
            "collaboration_id": meta.collaboration_id,
            "temporary_directory": str(meta.temporary_directory)}


@algorithm_client
def central_sum(client: AlgorithmClient, column: str,
                organizations: list[int] | None = None) -> dict[str, Any]:
    """Create a column_stats subtask at every organization, wait, and combine."""
    orgs = organizations or [org["id"] for org in client.organization.list()]
    task = client.task.create(
        {"method": "column_stats", "args": [], "kwargs": {"column": column}}, orgs,
        name="central_sum partial",
    )
    parts = client.wait_for_results(task["id"])
    count = sum(p["count"] for p in parts)
    total = sum(p["sum"] for p in parts)
    return {"count": count, "sum": total, "mean": total / count if count else None,
            "organizations": orgs, "parts": parts, "subtask_id": task["id"]}


@metadata
@algorithm_client
def spawn_foreign(client: AlgorithmClient, meta: RunMetaData, image: str) -> dict[str, Any]:
    """Try to create a subtask with another image; report what the server answered."""
    body = {
        "name": "foreign", "image": image, "collaboration_id": meta.collaboration_id,
        "description": "must be refused", "databases": client.databases,
        "organizations": [{"id": meta.organization_id,
                           "input": input_to_wire(make_input("echo", ["x"]))}],
    }
    try:
        task = client.request("task", method="post", json=body)
    except Exception as exc:  # the point of this function is to report the refusal
        return {"refused": True, "error": type(exc).__name__, "message": str(exc)}
    return {"refused": False, "task": task}


@data(1)
def loaded(db: Any) -> dict[str, Any]:
    """What ``@data`` passed for the first requested database: a DataFrame as JSON (``split``
    orient, no index) with its dtypes, or the URI of a database of type ``other``."""
    import json

    if isinstance(db, str):
        return {"uri": db}
    return {"frame": json.loads(db.to_json(orient="split", index=False)),
            "dtypes": {str(name): str(dtype) for name, dtype in db.dtypes.items()}}
