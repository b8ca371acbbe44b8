"""Peer-to-peer between two algorithm containers on two nodes: latency, set-up, throughput.

Starts a local federation (server + 2 node processes, SQLite), builds the probe image
``v6flow-test/p2p`` (tests/algorithms/p2p, EXPOSE 9999 ``bench``) and runs its ``bench``
function at both organizations, ``--repeats`` times: the run at the lower organization id
serves, the other measures inside its container

- the round trip of 1 byte on an open connection (``--rounds`` times),
- opening a new connection and one round trip on it (``--setups`` times: relay pairing),
- sending ``--megabytes`` MB and getting the receiver's SHA-256 back (checked).

Every byte goes container → sidecar → node → server → node → sidecar → container. The load
average of the machine is printed with the table (2 shared cores: figures vary with load).

    python benchmarks/p2p.py [--repeats 3] [--rounds 1000] [--setups 20] [--megabytes 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from v6flow import images
from v6flow.client import Client
from v6flow_flows.demo import docker_engine, ensure_images
from v6flow_flows.local_federation import local_federation

IMAGE = "v6flow-test/p2p:latest"
SOURCE = Path(__file__).resolve().parents[1] / "tests" / "algorithms" / "p2p"


def _bench(client: Client, collaboration: int, organizations: list[int],
           kwargs: dict[str, Any]) -> dict[str, Any]:
    task = client.task.create(collaboration, organizations, IMAGE, "bench", kwargs=kwargs,
                              databases=[])
    status = client.wait_for_task(int(task["id"]), timeout=900)
    if status != "completed":
        logs = "\n".join(str(r.get("log"))[-1500:]
                         for r in client.run.list(task_id=int(task["id"])))
        raise SystemExit(f"bench task ended {status}:\n{logs}")
    results = client.result.from_task(int(task["id"])).values()
    (measured,) = [r for r in results if r.get("role") == "client"]
    return dict(measured)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--setups", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=100)
    options = parser.parse_args()

    engine = docker_engine()
    ensure_images(engine, say=lambda message: print(f"  {message}"))
    images.build_algorithm_image(SOURCE, IMAGE, client=engine)
    load_before = os.getloadavg()
    kwargs = {"rounds": options.rounds, "setups": options.setups,
              "megabytes": options.megabytes}
    rtts: list[float] = []
    setups: list[float] = []
    rates: list[float] = []
    transfers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="v6flow-p2p-") as tmp, local_federation(
        Path(tmp), sidecar_image=images.BASE_IMAGE, sizes=(20, 20),
        policy=("^v6flow/.*", "^v6flow-test/.*"),
    ) as fed, Client(fed.url, username=fed.username, password=fed.password) as client:
        for repeat in range(options.repeats):
            began = time.perf_counter()
            measured = _bench(client, fed.collaboration_id, fed.organization_ids, kwargs)
            if not measured["digest_ok"]:
                raise SystemExit("the receiver's digest does not match the bytes sent")
            rtts += measured["rtt_ms"]
            setups += measured["setup_ms"]
            transfers.append(measured["seconds"])
            rates.append(measured["bytes"] / measured["seconds"] / 1e6)
            print(f"  repeat {repeat + 1}: {time.perf_counter() - began:.1f} s "
                  f"(task incl. container starts)")
    load_after = os.getloadavg()

    rows = [
        ("round trip, 1 byte, open connection (ms)", rtts),
        ("new connection + 1 round trip (ms)", setups),
        (f"{options.megabytes} MB one way + digest back (s)", transfers),
        ("throughput of that transfer (MB/s)", rates),
    ]
    print(f"\n| {'what':<44} |   median |      p95 |      min |      max |     n |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 7}|")
    for name, values in rows:
        print(f"| {name:<44} | {statistics.median(values):8.3f} | "
              f"{_percentile(values, 0.95):8.3f} | {min(values):8.3f} | {max(values):8.3f} | "
              f"{len(values):5d} |")
    print(f"\nload average (1/5/15 min) before: {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after: {load_after[0]:.2f}/{load_after[1]:.2f}/"
          f"{load_after[2]:.2f}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
