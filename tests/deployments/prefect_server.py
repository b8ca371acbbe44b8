"""A real ``prefect server start`` on 127.0.0.1 for tests (one per pytest session).

Both tests/deployments and tests/blocks use it through their conftests; the process is
shared (module-level), started on first use and stopped with SIGTERM at session end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 120.0
#: The ``prefect`` script beside the interpreter running the tests (the venv's), else PATH's;
#: its folder leads PATH in :meth:`PrefectServer.env`, so workers start flows with that Python.
PREFECT = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
_PREFECT_BIN = str(Path(PREFECT).parent) if Path(PREFECT).is_absolute() else None

#: Never phone home, never pick up a developer's profile.
QUIET_ENV = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
             "PREFECT_CLI_COLORS": "false", "PREFECT_CLI_WRAP_LINES": "false", "NO_COLOR": "1"}


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectServer:
    """A running local Prefect API and UI."""

    url: str
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def ui_url(self) -> str:
        """The UI root (the API URL without ``/api``)."""
        return self.url.removesuffix("/api")

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a Prefect CLI/worker subprocess talking to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(QUIET_ENV)
        env.update({"PREFECT_API_URL": self.url, "PREFECT_HOME": str(self.home),
                    "PATH": os.pathsep.join(
                        p for p in (_PREFECT_BIN, os.environ.get("PATH")) if p),
                    "PYTHONPATH": os.pathsep.join(
                        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)})
        env.update(extra)
        return env

    def log_text(self) -> str:
        """What the server wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then kill after ``grace`` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=grace)


def start_prefect_server(directory: Path) -> PrefectServer:
    """Start ``prefect server start`` with a private PREFECT_HOME and wait for /api/health."""
    port = free_port()
    home = directory / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = directory / "prefect-server.log"
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(QUIET_ENV)
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_UI_API_URL"] = url  # else the UI calls 127.0.0.1:4200
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=directory)
    server = PrefectServer(url=url, home=home, log_path=log_path, process=process)
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prefect server exited {process.returncode}:\n"
                                 f"{server.log_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"prefect server not healthy after {START_DEADLINE:.0f} s:\n"
                         f"{server.log_text()[-3000:]}")


_SHARED: dict[str, PrefectServer] = {}


def shared_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """Fixture body: the session's server, started by whichever conftest asks first."""
    owner = "server" not in _SHARED
    if owner:
        _SHARED["server"] = start_prefect_server(tmp_path_factory.mktemp("prefect"))
    server = _SHARED["server"]
    yield server
    if owner:
        _SHARED.pop("server", None)
        server.stop()
        assert server.process.returncode is not None


@contextlib.contextmanager
def prefect_api(server: PrefectServer) -> Iterator[None]:
    """Point this process's Prefect client at ``server`` (overrides any test harness)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.prefect_records import drain_prefect_events

    drain_prefect_events()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.url}):
            yield
    finally:
        drain_prefect_events()  # its events worker must not outlive this API URL
