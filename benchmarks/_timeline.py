"""Reading the JSON-line logs of a local federation: node run timings and the access log.

Shared by ``latency.py`` and ``fanout.py`` (run as scripts: this folder is on ``sys.path``).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a log file (other lines are skipped)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def epoch(timestamp: str) -> float:
    """An ISO timestamp of the logs (``…Z``) as seconds since the epoch."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def node_runs(directory: Path, node_names: list[str]) -> dict[int, dict[str, float]]:
    """Per run id: the node's split (``seconds_preparing``, ``seconds_starting_container``,
    ``seconds_in_container``, ``seconds_to_report``) from the node logs."""
    runs: dict[int, dict[str, float]] = {}
    keys = SPLIT_KEYS
    for name in node_names:
        for entry in json_lines(directory / f"{name}.log"):
            run_id = entry.get("run_id")
            if not isinstance(run_id, int):
                continue
            found = {k: float(entry[k]) for k in keys if isinstance(entry.get(k), int | float)}
            if found:
                runs.setdefault(run_id, {}).update(found)
    return runs


SPLIT_KEYS = ("seconds_preparing", "seconds_starting_container", "seconds_in_container",
              "seconds_to_report")


def median_split(runs: dict[int, dict[str, float]],
                 tasks: list[set[int]]) -> dict[str, float]:
    """The median over tasks of each split figure of the task's slowest run (the one that
    decided when the task was done)."""
    slowest = []
    for run_ids in tasks:
        known = [runs[r] for r in run_ids if r in runs]
        if known:
            slowest.append(max(known, key=lambda split: sum(split.values())))
    out: dict[str, float] = {}
    for key in SPLIT_KEYS:
        values = [split[key] for split in slowest if key in split]
        if values:
            out[key] = statistics.median(values)
    return out


@dataclass(frozen=True)
class Request:
    """One access-log line: when it started and ended (epoch seconds), what it was."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    start: float
    end: float
    principal_type: str | None


def access_log(path: Path) -> list[Request]:
    """The ``request`` lines of a server log (written at ``log_level`` info)."""
    requests = []
    for entry in json_lines(path):
        if entry.get("event") != "request" or "timestamp" not in entry:
            continue
        end = epoch(entry["timestamp"])
        requests.append(Request(
            method=str(entry.get("method")), path=str(entry.get("path")),
            query=parse_qs(str(entry.get("query") or "")), status=int(entry.get("status") or 0),
            start=end - float(entry.get("duration_ms") or 0) / 1000, end=end,
            principal_type=entry.get("principal_type")))
    return requests
