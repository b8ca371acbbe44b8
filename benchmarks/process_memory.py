"""Resident memory (VmRSS) of the real server and node processes, idle and after tasks.

Starts a local federation (``v6flow server start`` on SQLite, three ``v6flow node start``
processes) and reads ``VmRSS`` from ``/proc/<pid>/status`` of the server and of each node:
right after start, after ``--tasks`` summary tasks at all organizations (pandas in the
container, not in the node), and the peak (``VmHWM``) over all of it.

    python benchmarks/process_memory.py [--tasks 5] [--no-build]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _procmem import status_mb

from v6flow import images
from v6flow.client import Client
from v6flow_flows.demo import docker_engine, ensure_images
from v6flow_flows.local_federation import local_federation
from v6flow_flows.summary import SUMMARY_IMAGE


def pids_with(*words: str) -> list[int]:
    """Processes whose command line holds every word."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(word in command for word in words):
            found.append(int(proc.name))
    return found


def main() -> None:
    """Start, measure, run tasks, measure again; print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--no-build", action="store_true",
                        help="use the images as they are (no staleness check, no build)")
    options = parser.parse_args()
    if not options.no_build:
        ensure_images(docker_engine(), say=lambda message: print(f"  {message}"))
    with tempfile.TemporaryDirectory(prefix="v6flow-memory-") as tmp, local_federation(
        Path(tmp), sidecar_image=images.BASE_IMAGE
    ) as fed, Client(fed.url, username=fed.username, password=fed.password) as client:
        port = fed.url.split(":")[2].split("/")[0]
        (server,) = pids_with("server", "start", "--port", port)
        nodes = [pid for name in fed.node_names for pid in pids_with("node", "start", name)]
        time.sleep(2)  # settle: the nodes' first sync and spare sidecars
        rows = [("server", "after start", status_mb(server, "VmRSS")),
                ("node (median of 3)", "after start",
                 statistics.median(status_mb(pid, "VmRSS") for pid in nodes))]
        for _ in range(options.tasks):
            task = client.task.create(fed.collaboration_id, fed.organization_ids,
                                      SUMMARY_IMAGE, "summary",
                                      kwargs={"columns": ["age", "sex"]})
            assert client.wait_for_task(task.id, timeout=300) == "completed"
            client.result.from_task(task.id)
        time.sleep(1)
        rows += [("server", f"after {options.tasks} tasks", status_mb(server, "VmRSS")),
                 ("node (median of 3)", f"after {options.tasks} tasks",
                  statistics.median(status_mb(pid, "VmRSS") for pid in nodes)),
                 ("server", "peak (VmHWM)", status_mb(server, "VmHWM")),
                 ("node (highest of 3)", "peak (VmHWM)",
                  max(status_mb(pid, "VmHWM") for pid in nodes))]
    print(f"\n| {'process':<20} | {'when':<16} | VmRSS MB |")
    print(f"|{'-' * 22}|{'-' * 18}|----------|")
    for process, when, mb in rows:
        print(f"| {process:<20} | {when:<16} | {mb:8.1f} |")


if __name__ == "__main__":
    main()
