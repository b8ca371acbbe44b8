"""Create → results latency of federated tasks, next to the bare container start time.

Starts a local federation (server + 3 node processes, SQLite, Docker-isolated containers),
then, ``--repeats`` times each, creates a task that runs the summary partial (its image
imports pandas) at 1 and at 3 organizations and measures from ``POST /task`` until every
result is decoded on the client (push wake-up, no polling). The nodes' own log splits each
run into *preparing* (run report, image check, container token, files, network sidecar),
*starting the container* (Docker create + start), *in the container* (until it exited) and
*reporting* (logs, result, final PATCH): the medians over the tasks of their slowest run
are printed under each figure, with what is left for the server, the event stream and the
client (*rest*). In the same run it times ``docker run --rm`` of the base image (``true``)
and of the summary image (``python -c "import pandas"``: the floor of any task of that
image). Last, it times the
summary *flow* run as a central task inside a node container (``method=
"summary_statistics"`` at one organization: ephemeral Prefect in the container, subtasks to
all 3 organizations through the proxy), ``--central`` times (default 3; 0 skips it). Each
figure is printed with the 1-minute load average when it ended.

    python benchmarks/latency.py [--repeats 7] [--central 3] [--no-build]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _timeline import median_split, node_runs

from v6flow import images
from v6flow.client import Client
from v6flow_flows.demo import docker_engine, ensure_images
from v6flow_flows.local_federation import local_federation
from v6flow_flows.summary import SUMMARY_IMAGE

SPLIT_NAMES = {"seconds_preparing": "preparing", "seconds_starting_container":
               "starting the container", "seconds_in_container": "in the container",
               "seconds_to_report": "reporting"}


def load() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


def _timed(action: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def _docker_run(image: str, *command: str) -> Callable[[], object]:
    return lambda: subprocess.run(["docker", "run", "--rm", "--network", "none",
                                   image, *command], check=True, capture_output=True)


def _row(name: str, times: list[float]) -> str:
    return (f"| {name:<48} | {statistics.median(times):8.3f} | {min(times):8.3f} | "
            f"{max(times):8.3f} | {len(times):3d} | {load():>5} |")


def _split_rows(split: dict[str, float], total: float) -> list[str]:
    rows = [f"| {'  node: ' + SPLIT_NAMES[key]:<48} | {value:8.3f} |          |          "
            f"|     |       |" for key, value in split.items()]
    rest = total - sum(split.values())
    rows.append(f"| {'  rest: server, events, client':<48} | {rest:8.3f} |          |    "
                f"      |     |       |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--central", type=int, default=3)
    parser.add_argument("--no-build", action="store_true",
                        help="use the images as they are (no staleness check, no build)")
    options = parser.parse_args()
    repeats = options.repeats

    if not options.no_build:
        ensure_images(docker_engine(), say=lambda message: print(f"  {message}"))
    rows = [
        _row("docker run --rm base true", _timed(_docker_run(images.BASE_IMAGE, "true"),
                                                 repeats)),
        _row("docker run --rm summary python -c 'import pandas'",
             _timed(_docker_run(SUMMARY_IMAGE, "python", "-c", "import pandas"), repeats)),
    ]
    with tempfile.TemporaryDirectory(prefix="v6flow-bench-") as tmp, local_federation(
        Path(tmp), sidecar_image=images.BASE_IMAGE
    ) as fed, Client(fed.url, username=fed.username, password=fed.password) as client:
        for count in (1, 3):
            organizations = fed.organization_ids[:count]
            task_ids: list[int] = []

            def federated_task(organizations: list[int] = organizations,
                               task_ids: list[int] = task_ids) -> None:
                task = client.task.create(fed.collaboration_id, organizations, SUMMARY_IMAGE,
                                          "summary", kwargs={"columns": ["age", "sex"]})
                status = client.wait_for_task(task.id, timeout=120)
                results = client.result.from_task(task.id)
                assert status == "completed" and len(results) == len(organizations), status
                task_ids.append(task.id)

            federated_task()  # warm-up: first job on each node
            task_ids.clear()
            times = _timed(federated_task, repeats)
            rows.append(_row(f"create → results, {count} organization(s) (summary)", times))
            tasks = [{run.id for run in client.run.list(task_id=task_id)}
                     for task_id in task_ids]
            split = median_split(node_runs(fed.directory, fed.node_names), tasks)
            rows += _split_rows(split, statistics.median(times))

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

    print(f"\n| {'what':<48} | median s |    min s |    max s |   n | load  |")
    print(f"|{'-' * 50}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 5}|{'-' * 7}|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
