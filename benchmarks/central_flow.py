"""Create → result of a central task at 3 organizations: a Prefect flow next to a v4 function.

Starts ``prefect server start`` (a private home) and a local federation (server + 3 node
processes, SQLite, Docker-isolated containers) whose server forwards central flows' Prefect
requests to it (``V6FLOW_SERVER_PREFECT__API_URL``). Then, round robin so that drift of the
shared machine hits every variant alike, it times from ``POST /task`` until the result is
decoded on the client (the client waits by push):

- ``v4``: a vantage6 4.x-style central function (``@algorithm_client``, ``main(client,
  ...)``, benchmarks/central_v4) creating one ``summary`` subtask per organization, waiting
  for each (``wait_for_results``, polling) and combining them with the flow's combination;
- ``prefect``: the ``summary_statistics`` flow as the central task, reporting to the
  server's Prefect API (the default when the server has one);
- ``none``: the same flow without any Prefect API (``V6FLOW_CENTRAL_PREFECT=none`` in the
  image: what a server without ``prefect.api_url`` gives, minus one probe request);
- ``ephemeral``: the same flow with Prefect's temporary server in the container (the
  behaviour before ``/api/prefect``);
- ``partial``: no central function: one task running the ``summary`` partial at the 3
  organizations (what the subtasks cost on their own).

Every variant runs from its own image tag (``v6flow/bench-*:<random>``, removed at the end),
built from this checkout, so a rebuild of the shared tags by someone else cannot change an
image under a measurement. Each variant gets one warm-up run that is not counted.

Besides the table of create → result (median, min, max), it prints where the time went
(medians): from ``POST /task`` to the node picking the run up, from there to the first
subtask (container start, Python, Prefect import, flow-run creation), the subtasks (first
created → last finished), from the last subtask to the central run's end (combine, finishing
the flow run, sending the last logs and events, container exit, result upload), and from
there to the client holding the result; and, from the central run's log, the probe, the flow
import, the flow run and the final send.

    python benchmarks/central_flow.py [--repeats 5] [--modes v4,prefect,none,ephemeral,partial]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from v6flow import images
from v6flow.client import Client
from v6flow_flows.demo import docker_engine
from v6flow_flows.local_federation import LocalFederation, local_federation

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["age", "bmi", "sex"]
ALL_MODES = ("v4", "prefect", "none", "ephemeral", "partial")
TITLES = {
    "v4": "v4 central function (main(client), 3 subtasks)",
    "prefect": "flow, server's Prefect API (default)",
    "none": "flow, no Prefect API",
    "ephemeral": "flow, temporary Prefect server in container",
    "partial": "partial alone at 3 organizations (1 task)",
}
_LOG_FIGURES = {
    "probe for the Prefect API": re.compile(r"probe ([0-9.]+) s"),
    "import of the flow (and Prefect)": re.compile(r"flow import ([0-9.]+) s"),
    "flow run (or function)": re.compile(r"flow (?:run|function) finished in ([0-9.]+) s"),
    "last logs and events sent": re.compile(r"events sent in ([0-9.]+) s"),
}
_READY = re.compile(r"ready ([0-9.]+) s after the process started at ([0-9.]+)")


@dataclass
class Sample:
    """One timed run: create → result, and its parts."""

    total: float
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class BenchImages:
    """The image tag of each variant."""

    tags: dict[str, str]

    def remove(self) -> None:
        """Drop the tags (layers shared with the real images stay)."""
        engine = docker_engine()
        for tag in set(self.tags.values()):
            with contextlib.suppress(Exception):
                engine.images.remove(tag, noprune=False)


def build_images(say: Callable[[str], None]) -> BenchImages:
    """The summary image and its variants, under private tags, from this checkout."""
    suffix = secrets.token_hex(3)
    summary = f"v6flow/bench-summary:{suffix}"
    say(f"building {summary} (and the flow base when stale)")
    images.build_algorithm_image(ROOT / "flows" / "v6flow_flows" / "summary", summary)
    tags = {"prefect": summary, "partial": summary}
    with tempfile.TemporaryDirectory(prefix="v6flow-bench-") as tmp:
        for mode in ("none", "ephemeral"):
            context = Path(tmp) / mode
            context.mkdir()
            (context / "Dockerfile").write_text(
                f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nENV V6FLOW_CENTRAL_PREFECT={mode}\n")
            tags[mode] = images.build_algorithm_image(
                context, f"v6flow/bench-{mode}:{suffix}", base=summary)
    tags["v4"] = images.build_algorithm_image(ROOT / "benchmarks" / "central_v4",
                                              f"v6flow/bench-v4:{suffix}", base=summary)
    return BenchImages(tags)


@contextlib.contextmanager
def prefect_server(directory: Path) -> Iterator[str]:
    """``prefect server start`` on a free port with a private home; yields the API URL."""
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(directory / "prefect-home"), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_API_URL": url})
    log = (directory / "prefect-server.log").open("wb")
    process = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port",
                                str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"prefect server did not start; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def run_once(client: Client, fed: LocalFederation, mode: str, image: str) -> Sample:
    """One central task (or the partial alone), create → result, with its parts."""
    if mode == "partial":
        organizations, method = fed.organization_ids, "summary"
        kwargs: dict[str, Any] = {"columns": COLUMNS}
    else:
        organizations = fed.organization_ids[:1]
        method = "central_summary" if mode == "v4" else "summary_statistics"
        kwargs = {"columns": COLUMNS} if mode == "v4" else {
            "columns": COLUMNS, "quantiles": [], "retries": 0}
    started = time.perf_counter()
    task = client.task.create(fed.collaboration_id, organizations, image, method,
                              kwargs=kwargs)
    status = client.wait_for_task(task.id, timeout=600)
    results = client.result.from_task(task.id)
    total = time.perf_counter() - started
    done = time.time()
    if status != "completed" or len(results) != len(organizations):
        runs = client.run.list(task_id=task.id)
        raise SystemExit(f"{mode}: task {task.id} ended {status}:\n"
                         + "\n".join(str(run.log)[-3000:] for run in runs))
    if mode != "partial":
        (table,) = results.values()
        if table["organizations"] != len(fed.organization_ids):
            raise SystemExit(f"{mode}: a table of {table['organizations']} organizations")
    return Sample(total=total, parts=_parts(client, task.id, mode, done))


def _parts(client: Client, task_id: int, mode: str, done: float) -> dict[str, float]:
    """Where the time went, from the server's timestamps and the central run's log.

    ``done``: when the client held the result (epoch seconds).
    """
    parts: dict[str, float] = {}
    if mode == "partial":
        return parts
    task = client.task.get(task_id)
    (run,) = client.run.list(task_id=task_id)
    log = run.log or ""
    children = client.task.list(parent_id=task_id)
    child_runs = [r for child in children for r in client.run.list(task_id=child.id)]
    first_child = min((c.created_at for c in children if c.created_at), default=None)
    last_child = max((r.finished_at for r in child_runs if r.finished_at), default=None)
    ready = _READY.search(log)
    born = _utc(float(ready.group(2))) if ready else None
    flow_ready = _utc(float(ready.group(2)) + float(ready.group(1))) if ready else None
    for name, value in (
            ("create → node picks the run up", _seconds(run.started_at, task.created_at)),
            ("pickup → container process started", _seconds(born, run.started_at)),
            ("process start → flow ready (python, probe, import)",
             float(ready.group(1)) if ready else None),
            ("flow ready → first subtask created", _seconds(first_child, flow_ready)),
            ("pickup → first subtask created (all of the above)",
             _seconds(first_child, run.started_at)),
            ("subtasks: first created → last finished", _seconds(last_child, first_child)),
            ("last subtask → central run finished", _seconds(run.finished_at, last_child)),
            ("central run finished → client has the result",
             _seconds(_utc(done), run.finished_at))):
        if value is not None:
            parts[name] = value
    for name, pattern in _LOG_FIGURES.items():
        match = pattern.search(log)
        if match:
            parts[f"log: {name}"] = float(match.group(1))
    return parts


def _utc(epoch: float) -> datetime:
    """A naive-UTC datetime (the server's timestamps are naive UTC)."""
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _row(name: str, values: list[float], width: int = 52) -> str:
    return (f"| {name:<{width}} | {statistics.median(values):8.2f} | {min(values):8.2f} | "
            f"{max(values):8.2f} | {len(values):3d} |")


def report(samples: dict[str, list[Sample]]) -> str:
    """The tables: create → result per variant, then the medians of the parts."""
    head = f"| {'create → result, 3 organizations':<52} | median s |    min s |    max s |   n |"
    line = f"|{'-' * 54}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 5}|"
    out = [head, line]
    out += [_row(TITLES[mode], [s.total for s in runs]) for mode, runs in samples.items()]
    for mode, runs in samples.items():
        names = list(dict.fromkeys(name for s in runs for name in s.parts))
        if not names:
            continue
        out += ["", f"| {TITLES[mode] + ': where the time went':<52} | median s |    min s "
                    f"|    max s |   n |", line]
        for name in names:
            out.append(_row(name, [s.parts[name] for s in runs if name in s.parts]))
    return "\n".join(out)


def main() -> None:
    """Build, start, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default=",".join(ALL_MODES),
                        help=f"comma-separated, of {', '.join(ALL_MODES)}")
    options = parser.parse_args()
    modes = [m.strip() for m in options.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(ALL_MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}")

    def say(message: str) -> None:
        print(f"  {message}", flush=True)

    bench = build_images(say)
    try:
        with tempfile.TemporaryDirectory(prefix="v6flow-bench-central-") as tmp, \
                prefect_server(Path(tmp)) as prefect_url:
            say(f"prefect server at {prefect_url}")
            os.environ["V6FLOW_SERVER_PREFECT__API_URL"] = prefect_url
            with local_federation(Path(tmp) / "federation", sidecar_image=images.BASE_IMAGE,
                                  say=say) as fed, \
                    Client(fed.url, username=fed.username, password=fed.password) as client:
                samples: dict[str, list[Sample]] = {mode: [] for mode in modes}
                for mode in modes:
                    say(f"warm-up: {mode}")
                    run_once(client, fed, mode, bench.tags[mode])
                for repeat in range(options.repeats):
                    for mode in modes:
                        sample = run_once(client, fed, mode, bench.tags[mode])
                        samples[mode].append(sample)
                        say(f"{repeat + 1}/{options.repeats} {mode}: {sample.total:.2f} s")
        load = os.getloadavg()
        print(f"\nload average after the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"({os.cpu_count()} cores)\n")
        print(report(samples))
    finally:
        bench.remove()


if __name__ == "__main__":
    main()
