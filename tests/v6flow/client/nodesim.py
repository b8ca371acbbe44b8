"""A hand-driven node for client tests: logs in with its API key and reports runs by HTTP.

It speaks the real node protocol to the real server (CONTRACT §4), without Docker, so the
client's waiting and result decoding can be timed precisely.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from v6flow import wire


class HandNode:
    """One registered node, driven step by step from a test."""

    def __init__(self, base_url: str, api_key: str, organization_id: int) -> None:
        self.organization_id = organization_id
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/", timeout=10)
        answer = self.http.post("token/node", json={"api_key": api_key})
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def runs_of(self, task_id: int) -> list[dict[str, Any]]:
        """This node's runs of a task."""
        answer = self.http.get("run", params={"task_id": task_id, "per_page": 100})
        answer.raise_for_status()
        return [run for run in answer.json()["data"]
                if run["organization"]["id"] == self.organization_id]

    def runs_of_collaboration(self) -> list[dict[str, Any]]:
        """This node's open runs (``GET /run?state=open``)."""
        answer = self.http.get("run", params={"state": "open", "per_page": 100})
        answer.raise_for_status()
        return [run for run in answer.json()["data"]
                if run["organization"]["id"] == self.organization_id]

    def connect_briefly(self) -> None:
        """Open the node's event stream until its ``sync`` arrives, then close it: the
        server announces the node online, then (once it notices) offline."""
        with self.http.stream("GET", "events") as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("event:") and "sync" in line:
                    return

    def log(self, run_id: int, lines: list[str]) -> None:
        """Push live log lines (``POST /run/<id>/log``)."""
        self.http.post(f"run/{run_id}/log", json={"lines": lines}).raise_for_status()

    def finish(self, run_id: int, result: Any, *, status: str = "completed",
               log: str = "done") -> None:
        """Report the run finished with ``result`` (the final ``PATCH /run/<id>``)."""
        now = wire.format_datetime(wire.utcnow())
        self.http.patch(f"run/{run_id}", json={"started_at": now, "status": "active"}
                        ).raise_for_status()
        body = {"status": status, "finished_at": wire.format_datetime(wire.utcnow()),
                "log": log, "result": wire.result_to_wire(json.dumps(result).encode())}
        self.http.patch(f"run/{run_id}", json=body).raise_for_status()
