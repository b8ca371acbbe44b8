"""Create → results latency of federated tasks, next to the bare container start time.

Starts a local federation (server + 3 node processes, SQLite, Docker-isolated containers),
then, ``--repeats`` times each, creates a task that runs the summary partial at 1 and at 3
organizations and measures from ``POST /task`` until every result is decoded on the client
(push wake-up, no polling). In the same run it times ``docker run --rm <base image> true``
and ``docker run --rm <base image> python -c "import pandas"`` so the figures can be read
against what the container alone costs. Last, it times the summary *flow* run as a central
task inside a node container (``method="summary_statistics"`` at one organization: ephemeral
Prefect in the container, subtasks to all 3 organizations through the proxy), ``--central``
times (default 3; 0 skips it).

    python benchmarks/latency.py [--repeats 7] [--central 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flows.summary import SUMMARY_IMAGE
from v6flow import images
from v6flow.client import Client
from v6flow.demo import docker_engine, ensure_images
from v6flow.local_federation import local_federation


def _timed(action: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def _docker_run(*command: str) -> Callable[[], object]:
    return lambda: subprocess.run(["docker", "run", "--rm", "--network", "none",
                                   images.BASE_IMAGE, *command], check=True,
                                  capture_output=True)


def _row(name: str, times: list[float]) -> str:
    return (f"| {name:<44} | {statistics.median(times):8.3f} | {min(times):8.3f} | "
            f"{max(times):8.3f} | {len(times):3d} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--central", type=int, default=3)
    options = parser.parse_args()
    repeats = options.repeats

    engine = docker_engine()
    ensure_images(engine, say=lambda message: print(f"  {message}"))
    rows = [
        _row("docker run --rm base true", _timed(_docker_run("true"), repeats)),
        _row("docker run --rm base python -c 'import pandas'",
             _timed(_docker_run("python", "-c", "import pandas"), repeats)),
    ]
    with tempfile.TemporaryDirectory(prefix="v6flow-bench-") as tmp, local_federation(
        Path(tmp), sidecar_image=images.BASE_IMAGE
    ) as fed, Client(fed.url, username=fed.username, password=fed.password) as client:
        for count in (1, 3):
            organizations = fed.organization_ids[:count]

            def federated_task(organizations: list[int] = organizations) -> None:
                task = client.task.create(fed.collaboration_id, organizations, SUMMARY_IMAGE,
                                          "summary", kwargs={"columns": ["age", "sex"]})
                status = client.wait_for_task(task.id, timeout=120)
                results = client.result.from_task(task.id)
                assert status == "completed" and len(results) == len(organizations), status

            federated_task()  # warm-up: first job on each node
            rows.append(_row(f"create → results, {count} organization(s) (summary)",
                             _timed(federated_task, repeats)))

        def central_flow() -> None:
            task = client.task.create(
                fed.collaboration_id, fed.organization_ids[:1], SUMMARY_IMAGE,
                "summary_statistics", kwargs={"columns": ["age", "sex"], "quantiles": []})
            status = client.wait_for_task(task.id, timeout=600)
            (table,) = client.result.from_task(task.id).values()
            assert status == "completed" and table["organizations"] == 3, status

        if options.central > 0:
            rows.append(_row("flow as central task, 3 organizations",
                             _timed(central_flow, options.central)))

    print(f"\n| {'what':<44} | median s |    min s |    max s |   n |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 5}|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
