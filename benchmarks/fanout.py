"""Fan-out of a trivial partial to many nodes on this machine: create → all results, and where
the time goes.

For each ``--nodes`` count N it starts a local federation (one server on SQLite, N
organizations, one ``v6flow node start`` process per organization, each with its spare
network sidecar; the images are shared) and, ``--repeats`` times, creates one task at all N
organizations running a trivial partial (``return 1`` in an image built from the base
image, no pandas), and waits until every result is on the client. Before each repeat it
waits until every node has its spare sidecar again.

Where the time goes, per task (medians over the repeats):

- *server's share*, from the server's access log (its clocks, written at log level info):
  the ``POST /task`` call; from its answer until the last node's ``GET /run?task_id=…``
  (pickup) was answered (event fan-out, the nodes waking, the pickups); and from the last
  run's final ``PATCH /run/<id>`` until the client had every result (the event to the
  client, its status and results calls);
- *nodes and containers*: the node's own split of the slowest run (preparing, starting the
  container, in the container, reporting), and the rest of the window between the last
  pickup and the last report (containers queueing for the 2 cores).

    python benchmarks/fanout.py [--nodes 10 25 50] [--repeats 3] [--no-build]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from _timeline import SPLIT_KEYS, Request, access_log, median_split, node_runs

from v6flow import images
from v6flow.client import Client
from v6flow.sidecar import READY_LINE
from v6flow_flows.demo import docker_engine, ensure_images
from v6flow_flows.local_federation import LocalFederation, local_federation

TRIVIAL_IMAGE = "v6flow/bench-trivial:0.1.0"
_PACKAGE = '''"""A partial that does nothing: what is left is the platform's cost."""


def trivial() -> int:
    """One."""
    return 1
'''
_PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "v6flow-bench-trivial"
version = "0.1.0"
requires-python = ">=3.11"

[tool.setuptools]
packages = ["v6flow_bench_trivial"]
'''
_DOCKERFILE = '''ARG BASE_IMAGE=v6flow/base:0.1.0
FROM ${BASE_IMAGE}
COPY . /src
RUN pip install --no-index --find-links /opt/wheels --no-deps /src && rm -rf /src
ENV PKG_NAME=v6flow_bench_trivial
CMD ["python", "-c", "from v6flow.algorithm import wrap_algorithm; wrap_algorithm()"]
'''


def load() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


def build_trivial_image() -> None:
    """Build :data:`TRIVIAL_IMAGE` from the base image (offline)."""
    with tempfile.TemporaryDirectory(prefix="v6flow-trivial-") as folder:
        root = Path(folder)
        (root / "v6flow_bench_trivial").mkdir()
        (root / "v6flow_bench_trivial" / "__init__.py").write_text(_PACKAGE)
        (root / "pyproject.toml").write_text(_PYPROJECT)
        (root / "Dockerfile").write_text(_DOCKERFILE)
        images.build_algorithm_image(root, TRIVIAL_IMAGE)


def wait_for_spares(engine: docker.DockerClient, fed: LocalFederation,
                    timeout: float = 300) -> None:
    """Until every node of ``fed`` has a running spare sidecar (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    names = set(fed.node_names)
    while time.monotonic() < deadline:
        running = engine.containers.list(filters={"name": "-sidecar-spare-",
                                                  "status": "running"})
        ready = {c.labels.get("v6flow.node") for c in running
                 if READY_LINE.encode() in c.logs()}
        if names <= ready:
            time.sleep(0.2)  # the node hears of it right after the line
            return
        time.sleep(0.5)


@dataclass
class Figures:
    """One task's figures (seconds)."""

    total: float
    create: float
    pickup: float
    result: float
    work: float
    split: dict[str, float]

    @property
    def server(self) -> float:
        """The server's share."""
        return self.create + self.pickup + self.result


def task_figures(requests: list[Request], *, task_id: int, run_ids: set[int], sent: float,
                 done: float, split: dict[str, float]) -> Figures:
    """A task's figures from the access log; ``sent``/``done``: the client's clock."""
    create = next(r for r in requests if r.method == "POST" and r.path == "/api/task"
                  and r.start >= sent - 1 and r.status == 201)
    pickups = [r for r in requests if r.method == "GET" and r.path == "/api/run"
               and r.query.get("task_id") == [str(task_id)] and r.principal_type == "node"]
    finals: dict[int, float] = {}
    for r in requests:
        if r.method == "PATCH" and r.path.startswith("/api/run/"):
            run_id = int(r.path.rsplit("/", 1)[1])
            if run_id in run_ids:
                finals[run_id] = max(finals.get(run_id, 0.0), r.end)
    last_pickup = max(r.end for r in pickups)
    last_report = max(finals.values())
    return Figures(total=done - sent, create=create.end - create.start,
                   pickup=last_pickup - create.end, result=done - last_report,
                   work=last_report - last_pickup, split=split)


def measure(count: int, repeats: int, engine: docker.DockerClient) -> list[str]:
    """Start a federation of ``count`` nodes and time ``repeats`` fan-out tasks."""
    with tempfile.TemporaryDirectory(prefix="v6flow-fanout-") as tmp, local_federation(
        Path(tmp), sidecar_image=images.BASE_IMAGE, sizes=[20] * count,
        server_log_level="info",
    ) as fed, Client(fed.url, username=fed.username, password=fed.password) as client:
        figures: list[Figures] = []
        for attempt in range(repeats + 1):  # the first is a warm-up
            wait_for_spares(engine, fed)
            sent = time.time()
            task = client.task.create(fed.collaboration_id, fed.organization_ids,
                                      TRIVIAL_IMAGE, "trivial")
            status = client.wait_for_task(task.id, timeout=600)
            results = client.result.from_task(task.id)
            done = time.time()
            assert status == "completed" and len(results) == count, (status, len(results))
            if attempt == 0:
                continue
            run_ids = {run.id for run in client.run.list(task_id=task.id)}
            split = median_split(node_runs(fed.directory, fed.node_names), [run_ids])
            figures.append(task_figures(access_log(fed.directory / "server.log"),
                                        task_id=task.id, run_ids=run_ids, sent=sent,
                                        done=done, split=split))
        return rows(count, figures)


def rows(count: int, figures: list[Figures]) -> list[str]:
    """The table rows of one node count (medians)."""
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):7.3f}"

    split = {key: med([f.split.get(key, 0.0) for f in figures]) for key in SPLIT_KEYS}
    return [
        f"| {count:5d} | {med([f.total for f in figures])} | "
        f"{med([f.server for f in figures])} | {med([f.create for f in figures])} | "
        f"{med([f.pickup for f in figures])} | {med([f.result for f in figures])} | "
        f"{med([f.work for f in figures])} | {split['seconds_preparing']} | "
        f"{split['seconds_starting_container']} | {split['seconds_in_container']} | "
        f"{split['seconds_to_report']} | {len(figures):2d} | {load():>5} |"]


def main() -> None:
    """Build the image, measure each node count, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-build", action="store_true",
                        help="use the images as they are (no staleness check, no build)")
    options = parser.parse_args()
    engine = docker_engine()
    if not options.no_build:
        ensure_images(engine, say=lambda message: print(f"  {message}"))
        build_trivial_image()
    lines: list[str] = []
    for count in options.nodes:
        lines += measure(count, options.repeats, engine)
        print(lines[-1], flush=True)
    print("\nseconds, medians; server = create + pickup + result (access log); work = last "
          "pickup → last report; node split of the slowest run")
    print("| nodes |   total |  server |  create |  pickup |  result |    work | prepare | "
          " start  | in cont | report  |  n | load  |")
    print("|-------|---------|---------|---------|---------|---------|---------|---------|"
          "---------|---------|---------|----|-------|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
