"""A whole federation on this machine: server and node subprocesses (the embedded default).

Used by ``v6flow demo`` and the benchmarks. Everything runs as real processes: the server
(``v6flow server start``, SQLite in a folder), three organizations with synthetic CSVs, a
collaboration, a researcher, and one ``v6flow node start`` per organization. Leaving the
context stops every process (SIGTERM, then kill) in reverse order.

Examples:
    >>> with local_federation(Path("/tmp/fed"), sidecar_image=BASE_IMAGE) as fed:  # doctest: +SKIP
    ...     with Client(fed.url, username=fed.username, password=fed.password) as client:
    ...         ...
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from v6flow.client import Client
from v6flow.errors import V6FlowError
from v6flow.synthetic import DEFAULT_SIZES, write_federation_csvs

Say = Callable[[str], None]

#: Images the local nodes accept.
LOCAL_POLICY = ("^v6flow/.*",)


class FederationStartError(V6FlowError):
    """A process of the local federation did not come up (the message has its log tail)."""


@dataclass
class LocalFederation:
    """Where the local federation is and how to log in to it."""

    url: str
    root_password: str
    collaboration_id: int
    organization_ids: list[int]
    username: str
    password: str
    csvs: list[Path]
    node_names: list[str]
    directory: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "v6flow.cli.main", *args]


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               log: Path | None = None) -> None:
    """Poll ``check`` every 0.1 s until it is true.

    Raises:
        FederationStartError: not true after ``timeout`` seconds (with the log's tail).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise FederationStartError(f"{what} not ready after {timeout:.0f} s\n{tail}")


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started subprocesses, stopped in reverse order (SIGTERM, then kill) on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start_server(directory: Path, procs: list[subprocess.Popen[bytes]],
                  log_level: str = "warning") -> tuple[str, str]:
    port = free_port()
    password = secrets.token_urlsafe(18)
    env = {**os.environ, "V6FLOW_SERVER_ROOT_PASSWORD": password,
           "V6FLOW_SERVER_DATABASE_URL": f"sqlite:///{directory / 'server.sqlite'}",
           "V6FLOW_SERVER_LOG_LEVEL": log_level}
    log = directory / "server.log"
    with log.open("ab") as out:
        procs.append(subprocess.Popen(_cli("server", "start", "--port", str(port)),
                                      env=env, stdout=out, stderr=subprocess.STDOUT))
    url = f"http://127.0.0.1:{port}/api"
    server = procs[-1]

    def up() -> bool:
        if server.poll() is not None:
            raise FederationStartError(
                f"the server exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 60, "server", log)
    return url, password


def _write_node_config(path: Path, *, url: str, api_key: str, name: str, directory: Path,
                       csv: Path, policy: Sequence[str], sidecar_image: str) -> None:
    import yaml

    config = {
        "server_url": url, "api_key": api_key, "name": name,
        "task_dir": str(directory / "tasks" / name),
        "databases": [{"label": "default", "uri": str(csv), "type": "csv"}],
        "policies": {"allowed_algorithms": list(policy), "require_algorithm_pull": False},
        "share_algorithm_logs": True, "sidecar_image": sidecar_image,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


#: Nodes started at once: each start costs a second or two of CPU (and a spare sidecar), so
#: dozens at once on a small machine starve the server past the clients' timeouts.
NODE_START_BATCH = 10


def _start_nodes(root: Client, *, url: str, directory: Path, csvs: Sequence[Path],
                 organization_ids: Sequence[int], collaboration_id: int,
                 policy: Sequence[str], sidecar_image: str,
                 procs: list[subprocess.Popen[bytes]], say: Say) -> list[str]:
    names: list[str] = []
    pairs = list(zip(organization_ids, csvs, strict=True))
    for first in range(0, len(pairs), NODE_START_BATCH):
        batch: list[tuple[int, str]] = []
        for index, (org, csv) in enumerate(pairs[first:first + NODE_START_BATCH], first):
            name = f"local-{secrets.token_hex(3)}-{index}"
            created = root.node.create(collaboration_id, org, name=name)
            config = directory / f"{name}.yaml"
            _write_node_config(config, url=url, api_key=created.api_key, name=name,
                               directory=directory, csv=csv, policy=policy,
                               sidecar_image=sidecar_image)
            with (directory / f"{name}.log").open("ab") as out:
                procs.append(subprocess.Popen(_cli("node", "start", "--config", str(config)),
                                              stdout=out, stderr=subprocess.STDOUT))
            batch.append((created.id, name))
        say(f"{len(batch)} nodes starting ({', '.join(name for _, name in batch)})")
        for node_id, name in batch:

            def online(node_id: int = node_id) -> bool:
                return root.node.get(node_id).status == "online"

            wait_until(online, 60, f"node {name}", directory / f"{name}.log")
        names += [name for _, name in batch]
    return names


@contextlib.contextmanager
def local_federation(directory: Path, *, sidecar_image: str,
                     sizes: Sequence[int] = DEFAULT_SIZES,
                     policy: Sequence[str] = LOCAL_POLICY,
                     say: Say = lambda _m: None,
                     server_log_level: str = "warning") -> Iterator[LocalFederation]:
    """Start a server and one node per organization in ``directory``; stop them on exit.

    ``server_log_level="info"`` keeps the server's access log (``server.log``; benchmarks).

    Raises:
        FederationStartError: the server or a node did not come up.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with _processes() as procs:
        say(f"server starting (SQLite in {directory})")
        url, root_password = _start_server(directory, procs, server_log_level)
        csvs = write_federation_csvs(directory / "data", sizes)
        with Client(url, username="root", password=root_password) as root:
            orgs = [root.organization.create(f"hospital-{chr(65 + i)}").id
                    for i in range(len(csvs))]
            collaboration = root.collaboration.create("local", orgs).id
            role = root.role.list(name="Researcher")[0]
            username, password = "researcher", secrets.token_urlsafe(18)
            root.user.create(username, password, orgs[0], roles=[role.id])
            names = _start_nodes(root, url=url, directory=directory, csvs=csvs,
                                 organization_ids=orgs, collaboration_id=collaboration,
                                 policy=policy, sidecar_image=sidecar_image, procs=procs,
                                 say=say)
        yield LocalFederation(url=url, root_password=root_password,
                              collaboration_id=collaboration, organization_ids=orgs,
                              username=username, password=password, csvs=csvs,
                              node_names=names, directory=directory)
