"""The ``v6flow demo``: a whole federation on this machine, one summary flow, one comparison.

Temp dir → server subprocess (SQLite) → 3 organizations with synthetic CSVs, a
collaboration and a researcher → 3 node subprocesses → base and summary images (built
offline if missing) → the ``summary_statistics`` flow under an ephemeral Prefect →
the federated table next to pandas on the pooled CSVs → everything stopped.

Every step reports through ``say``; the CLI (``v6flow.cli.demo_cmd``) renders the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from v6flow.client import Client
from v6flow.errors import EngineUnavailable, V6FlowError
from v6flow.synthetic import write_federation_csvs

Say = Callable[[str], None]

DEMO_POLICY = ["^v6flow/.*"]
NODE_LABEL = "v6flow.node"
SOURCE_LABEL = "v6flow.demo.source_hash"
DOCKER_HELP = ("No Docker engine is reachable. Install and start one, e.g.\n"
               "  apt-get install -y docker.io && (dockerd >/tmp/dockerd.log 2>&1 &)\n"
               "then run `v6flow demo` again.")


class DemoError(V6FlowError):
    """The demo cannot run or a step of it failed (the message says which)."""


@dataclass
class DemoReport:
    """What the demo computed and how long it took."""

    federated: dict[str, Any]
    pooled: dict[str, Any]
    max_abs_difference: float
    categories_equal: bool
    wall_seconds: float = 0.0
    directory: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)


# -- small helpers ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "v6flow.cli.main", *args]


def _wait_until(check: Callable[[], bool], timeout: float, what: str,
                log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise DemoError(f"{what} not ready after {timeout:.0f} s\n{tail}")


def _source_hash(folder: Path, salt: str = "") -> str:
    digest = hashlib.sha256(salt.encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# -- images ------------------------------------------------------------------------------
def docker_engine() -> Any:
    """A pinged Docker client.

    Raises:
        DemoError: no Docker engine is reachable (the message says how to get one).
    """
    from v6flow import images

    try:
        return images.docker_client()
    except EngineUnavailable as exc:
        raise DemoError(DOCKER_HELP) from exc


def ensure_images(client: Any, say: Say) -> None:
    """Build the base image and the summary image when missing or outdated.

    Raises:
        DemoError: a build failed.
    """
    from flows import summary as summary_pkg
    from flows.summary import SUMMARY_IMAGE
    from v6flow import images

    try:
        say(f"base image {images.BASE_IMAGE}")
        images.ensure_base_image(client=client, progress=lambda _line: None)
        context = Path(summary_pkg.__file__).parent
        base_id = client.images.get(images.BASE_IMAGE).id
        wanted = _source_hash(context, salt=str(base_id))
        labels = images.image_labels(client, SUMMARY_IMAGE)
        if labels is None or labels.get(SOURCE_LABEL) != wanted:
            say(f"building {SUMMARY_IMAGE} (offline)")
            images.build_algorithm_image(context, SUMMARY_IMAGE, client=client,
                                         labels={SOURCE_LABEL: wanted})
    except V6FlowError as exc:
        raise DemoError(f"image build failed: {exc}") from exc


# -- processes ---------------------------------------------------------------------------
@dataclass
class _Federation:
    url: str
    collaboration_id: int
    username: str
    password: str
    csvs: list[Path]
    node_names: list[str]


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


def _start_server(directory: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[str, str]:
    port = _free_port()
    password = secrets.token_urlsafe(18)
    env = {**os.environ, "V6FLOW_SERVER_ROOT_PASSWORD": password,
           "V6FLOW_SERVER_DATABASE_URL": f"sqlite:///{directory / 'server.sqlite'}",
           "V6FLOW_SERVER_LOG_LEVEL": "warning"}
    log = directory / "server.log"
    with log.open("ab") as out:
        procs.append(subprocess.Popen(_cli("server", "start", "--port", str(port)),
                                      env=env, stdout=out, stderr=subprocess.STDOUT))
    url = f"http://127.0.0.1:{port}/api"

    def up() -> bool:
        if procs[-1].poll() is not None:
            raise DemoError(f"the server exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_until(up, 60, "server", log)
    return url, password


def _setup_federation(url: str, root_password: str, directory: Path,
                      sizes: Sequence[int], procs: list[subprocess.Popen[bytes]],
                      sidecar_image: str, say: Say) -> _Federation:
    import yaml

    csvs = write_federation_csvs(directory / "data", sizes)
    names: list[str] = []
    with Client(url, username="root", password=root_password) as root:
        orgs = [int(root.organization.create(f"hospital-{chr(65 + i)}")["id"])
                for i in range(len(csvs))]
        collaboration = int(root.collaboration.create("demo", orgs)["id"])
        role = root.role.list(name="Researcher")[0]
        username, password = "researcher", secrets.token_urlsafe(18)
        root.user.create(username, password, orgs[0], roles=[int(role["id"])])
        node_ids = []
        for index, (org, csv) in enumerate(zip(orgs, csvs, strict=True)):
            name = f"demo-{secrets.token_hex(3)}-{index}"
            created = root.node.create(collaboration, org, name=name)
            config = {
                "server_url": url, "api_key": created["api_key"], "name": name,
                "task_dir": str(directory / "tasks" / name),
                "databases": [{"label": "default", "uri": str(csv), "type": "csv"}],
                "policies": {"allowed_algorithms": DEMO_POLICY, "require_algorithm_pull": False},
                "share_algorithm_logs": True, "sidecar_image": sidecar_image,
            }
            path = directory / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            with (directory / f"{name}.log").open("ab") as out:
                procs.append(subprocess.Popen(_cli("node", "start", "--config", str(path)),
                                              stdout=out, stderr=subprocess.STDOUT))
            names.append(name)
            node_ids.append(int(created["id"]))
        say(f"3 nodes starting ({', '.join(names)})")
        for node_id, name in zip(node_ids, names, strict=True):

            def online(node_id: int = node_id) -> bool:
                return root.node.get(node_id).get("status") == "online"

            _wait_until(online, 60, f"node {name}", directory / f"{name}.log")
    return _Federation(url, collaboration, username, password, csvs, names)


# -- Prefect -------------------------------------------------------------------------------
def _prefect_environment(directory: Path) -> None:
    """An ephemeral, private, quiet Prefect (set before prefect is imported)."""
    os.environ.update({
        "PREFECT_HOME": str(directory / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
    })
    os.environ.pop("PREFECT_API_URL", None)


def _start_prefect_in_background() -> threading.Thread:
    """Start the ephemeral Prefect API now (about 10-25 s), while images and nodes start."""

    def warm_up() -> None:
        from prefect.client.orchestration import get_client

        with contextlib.suppress(Exception):  # the flow run retries and reports properly
            get_client(sync_client=True)

    thread = threading.Thread(target=warm_up, name="prefect-warm-up", daemon=True)
    thread.start()
    return thread


def _run_flow(fed: _Federation) -> dict[str, Any]:
    from flows.summary.flow import ServerParameters, summary_statistics

    server = ServerParameters(url=fed.url, username=fed.username,
                              password=fed.password)  # type: ignore[arg-type]
    result: dict[str, Any] = asyncio.run(
        summary_statistics(collaboration_id=fed.collaboration_id, server=server))
    return result


# -- comparison ----------------------------------------------------------------------------
def pooled_summary(csvs: Sequence[Path]) -> dict[str, Any]:
    """The same table computed by pandas on all rows pooled (the reference)."""
    import pandas as pd

    df = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    numeric: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            numeric[str(name)] = {"count": int(s.count()), "missing": int(s.isna().sum()),
                                  "mean": float(s.mean()), "std": float(s.std()),
                                  "min": float(s.min()), "max": float(s.max())}
        else:
            categorical[str(name)] = {
                "missing": int(s.isna().sum()),
                "counts": {str(k): int(v) for k, v in s.value_counts().items()}}
    return {"rows": len(df), "numeric": numeric, "categorical": categorical}


def max_abs_difference(federated: dict[str, Any], pooled: dict[str, Any]) -> float:
    """Largest absolute difference over every numeric statistic of both tables."""
    worst = 0.0
    for name, want in pooled["numeric"].items():
        got = federated["numeric"].get(name, {})
        for key, value in want.items():
            other = got.get(key)
            worst = max(worst, float("inf") if other is None else abs(float(other) - value))
    return worst


def _leftover_containers(names: Sequence[str]) -> list[str]:
    from v6flow import images

    client = images.docker_client()
    return [c.name for name in names
            for c in client.containers.list(all=True, filters={"label": f"{NODE_LABEL}={name}"})]


# -- the demo -----------------------------------------------------------------------------
def run_demo(*, dev_runtime: bool = False, keep: bool = False,
             sizes: Sequence[int] = (120, 80, 50), say: Say = lambda _m: None) -> DemoReport:
    """Run the whole demo and return its report (see the module docstring).

    Raises:
        DemoError: no Docker engine, or a step failed (message says which and why).
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    from v6flow import images

    try:
        engine = docker_engine()
    except DemoError:
        if dev_runtime:
            raise DemoError(
                "--dev-runtime: no development (process) runtime for nodes exists in this "
                "build; algorithms run only in Docker.\n" + DOCKER_HELP) from None
        raise
    if dev_runtime:
        say("--dev-runtime ignored: a Docker engine is reachable, algorithms run isolated")
    directory = Path(tempfile.mkdtemp(prefix="v6flow-demo-"))
    _prefect_environment(directory)
    prefect_ready = _start_prefect_in_background()
    try:
        ensure_images(engine, say)
    except DemoError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    timings["images"] = time.monotonic() - started
    node_names: list[str] = []
    succeeded = False
    try:
        with _processes() as procs:
            say(f"server starting (SQLite in {directory})")
            url, root_password = _start_server(directory, procs)
            fed = _setup_federation(url, root_password, directory, sizes, procs,
                                    images.BASE_IMAGE, say)
            node_names = fed.node_names
            timings["federation"] = time.monotonic() - started
            say("running the summary_statistics flow under Prefect (ephemeral)")
            prefect_ready.join(timeout=180)
            federated = _run_flow(fed)
            timings["flow"] = time.monotonic() - started
        left = _leftover_containers(node_names)
        if left:
            raise DemoError(f"containers left behind: {left}")
        pooled = pooled_summary(fed.csvs)
        succeeded = True
        return DemoReport(
            federated=federated, pooled=pooled,
            max_abs_difference=max_abs_difference(federated, pooled),
            categories_equal=federated["categorical"] == pooled["categorical"],
            wall_seconds=time.monotonic() - started, directory=directory if keep else None,
            timings=timings)
    except V6FlowError as exc:
        if isinstance(exc, DemoError):
            raise
        raise DemoError(f"{type(exc).__name__}: {exc} (logs in {directory})") from exc
    finally:
        if succeeded and not keep:  # a failed demo keeps its logs for inspection
            shutil.rmtree(directory, ignore_errors=True)
