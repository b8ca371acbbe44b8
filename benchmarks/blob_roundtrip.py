"""A large result's round trip through the blob store: node → server → client, time and memory.

Starts ``v6flow server start`` (SQLite, a local blob store in a temporary folder) and one real
``v6flow node start``; builds ``v6flow-test/node-bulky:latest`` from
``tests/node/algorithms/bulky`` when missing. For each size it creates a task whose algorithm
returns a text of that many bytes, waits for it, and fetches the result with
``v6flow.client.Client`` (streamed and base64-decoded). It prints, per size:

- ``upload s``: the node's stream of the output file to ``POST /blobstream`` (its log line);
- ``download s``: the client's stream of ``GET /blobstream/<uuid>`` plus the JSON decode;
- ``round trip s``: the two together (node → server → client), the figure the target is on;
- ``task s``: from ``POST /task`` to the decoded result (container start and the algorithm
  making its text included);
- the peak resident memory growth of the server and of the node process (``VmHWM`` of
  ``/proc/<pid>/status``, reset through ``clear_refs`` before each task, against the
  process's own ``VmRSS`` at that moment).

    python benchmarks/blob_roundtrip.py [--mb 200 --mb 1024]

Needs Docker (the algorithm runs in a container, as in production) and root (``clear_refs``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from _procmem import PeakMeter, free_port

from v6flow import images
from v6flow.client import Client

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
BULKY_DIR = ROOT / "tests" / "node" / "algorithms" / "bulky"
BULKY_IMAGE = "v6flow-test/node-bulky:latest"


def expected_text(size: int) -> str:
    """The text the bulky algorithm returns for ``size`` (seed ``v6flow``)."""
    block = hashlib.sha512(b"v6flow").hexdigest() * 128
    return (block * (size // len(block) + 1))[:size]


class Federation:
    """One server with a local blob store and one node, in a temporary folder."""

    def __init__(self, folder: Path, memory_limit: str) -> None:
        """Start both and wait until the node is online."""
        self.folder = folder
        self.password = secrets.token_urlsafe(12)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith("V6FLOW_SERVER_")}
        env.update({"V6FLOW_SERVER_DATABASE_URL": f"sqlite:///{folder}/server.sqlite",
                    "V6FLOW_SERVER_ROOT_PASSWORD": self.password,
                    "V6FLOW_SERVER_BLOBS__BACKEND": "local",
                    "V6FLOW_SERVER_BLOBS__PATH": str(folder / "blobs"),
                    "V6FLOW_SERVER_BLOBS__MAX_BLOB_BYTES": str(8 * 1024 * MB),
                    "V6FLOW_SERVER_LOG_LEVEL": "warning"})
        self.server = subprocess.Popen(
            ["v6flow", "server", "start", "--port", str(port)], env=env,
            stdout=(folder / "server.log").open("wb"), stderr=subprocess.STDOUT)
        self._wait(lambda: httpx.get(f"{self.url}/health", timeout=1).status_code == 200)
        token = self._login()
        org = self._post(token, "organization", {"name": "bench-org"})["id"]
        collab = self._post(token, "collaboration", {"name": "bench", "organization_ids": [org],
                                                     "encrypted": False})["id"]
        node = self._post(token, "node", {"organization_id": org, "collaboration_id": collab,
                                          "name": "bench-node"})
        self.organization_id, self.collaboration_id = org, collab
        roles = httpx.get(f"{self.url}/role", params={"name": "Root"},
                          headers={"Authorization": f"Bearer {token}"}).json()["data"]
        self._post(token, "user", {"username": "bench", "password": self.password,
                                   "organization_id": org, "roles": [roles[0]["id"]]})
        csv = folder / "data.csv"
        csv.write_text("x\n1\n")
        config = folder / "node.yaml"
        config.write_text(yaml.safe_dump({
            "server_url": self.url, "api_key": node["api_key"], "name": "bench-node",
            "task_dir": str(folder / "tasks"),
            "databases": [{"label": "default", "uri": str(csv), "type": "csv"}],
            "policies": {"allowed_algorithms": ["^v6flow-test/.*"],
                         "require_algorithm_pull": False},
            "limits": {"memory": memory_limit}, "sidecar_image": images.BASE_IMAGE}))
        self.node_log = folder / "node.log"
        self.node = subprocess.Popen(
            [sys.executable, "-m", "v6flow.cli.main", "node", "start", "--config", str(config)],
            stdout=self.node_log.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"})
        self._wait(lambda: httpx.get(f"{self.url}/node/{node['id']}", timeout=2, headers={
            "Authorization": f"Bearer {token}"}).json().get("status") == "online", 90)

    def _login(self) -> str:
        return str(httpx.post(f"{self.url}/token/user", json={
            "username": "root", "password": self.password}).json()["access_token"])

    def _post(self, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/{path}", json=body,
                              headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return dict(response.json())

    def _wait(self, ready: Any, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"not ready after {seconds} s; see the logs in {self.folder}")

    def upload_seconds(self, blob_id: str) -> float:
        """The node's own timing of the result upload (its JSON log line)."""
        for line in self.node_log.read_text(errors="replace").splitlines():
            if blob_id in line and "streamed to the blob store" in line:
                return float(json.loads(line[line.index("{"):])["seconds"])
        raise SystemExit(f"no upload line for {blob_id} in {self.node_log}")

    def stop(self) -> None:
        """Stop the node, then the server."""
        for proc in (self.node, self.server):
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(fed: Federation, size: int) -> dict[str, Any]:
    """One task returning ``size`` bytes of text; timings and memory growth."""
    server, node = PeakMeter(fed.server.pid), PeakMeter(fed.node.pid)
    with Client(fed.url, username="bench", password=fed.password, timeout=600) as client:
        client.login()
        server.start()
        node.start()
        began = time.perf_counter()
        task = client.task.create(fed.collaboration_id, [fed.organization_id], BULKY_IMAGE,
                                  "sized", kwargs={"size": size})
        status = client.wait_for_task(task.id, timeout=1800)
        (item,) = client.result.list(task_id=task.id)
        fetched = time.perf_counter()
        value = client.result.value(item.run.id)
        done = time.perf_counter()
    ok = (status.value == "completed" and item.blob_storage_used and len(value) == size
          and hashlib.sha256(value.encode()).digest() ==
          hashlib.sha256(expected_text(size).encode()).digest())
    upload = fed.upload_seconds(str(item.result))
    download = done - fetched
    return {"MB": size // MB, "upload s": upload, "download s": download,
            "round trip s": upload + download, "task s": done - began,
            "server growth MB": server.growth_mb(), "node growth MB": node.growth_mb(),
            "intact": ok}


def main() -> None:
    """Parse arguments, run the sizes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, action="append",
                        help="result size in MiB (repeatable; default 200 and 1024)")
    parser.add_argument("--memory", default="6g",
                        help="memory limit of the algorithm container (it holds the text "
                             "about three times while writing it)")
    args = parser.parse_args()
    sizes = args.mb or [200, 1024]
    images.build_algorithm_image(BULKY_DIR, BULKY_IMAGE)
    with tempfile.TemporaryDirectory(prefix="v6flow-blob-bench-") as tmp:
        fed = Federation(Path(tmp), args.memory)
        try:
            rows = [measure(fed, mb * MB) for mb in sizes]
        finally:
            fed.stop()
    columns = list(rows[0])
    print(" | ".join(f"{c:>16}" for c in columns))
    print("-+-".join("-" * 16 for _ in columns))
    for row in rows:
        print(" | ".join(f"{row[c]:>16.2f}" if isinstance(row[c], float) and
                         not isinstance(row[c], bool) else f"{row[c]!s:>16}" for c in columns))


if __name__ == "__main__":
    main()
