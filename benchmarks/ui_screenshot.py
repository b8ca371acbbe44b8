"""Screenshot of a finished summary flow run in the Prefect UI (docs/img/flow-run.png).

What it does:
1. starts a local ``prefect server start`` on 127.0.0.1 (private PREFECT_HOME), or reuses
   the one given with ``--prefect-url``;
2. starts a federation like ``v6flow demo`` does (server subprocess, 3 organizations,
   3 node processes, offline-built images): :func:`v6flow_flows.demo.ensure_images` and
   :func:`v6flow_flows.local_federation.local_federation`;
3. saves a ``V6flowServerCredentials`` Block and runs the ``summary_statistics`` flow
   against that Prefect server (``summary@<organization>`` and ``histogram@<organization>``
   task runs per node);
4. stops the federation and takes a headless-Chromium screenshot of
   ``/runs/flow-run/<id>`` (task-run timeline per organization and the logs);
5. prints the PNG path.

Usage (from the repository root; Docker must be running, chromium installed)::

    python benchmarks/ui_screenshot.py [--out docs/img/flow-run.png] [--prefect-url URL]

The other benchmark imports :func:`local_prefect_server` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "docs" / "img" / "flow-run.png"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--virtual-time-budget=15000", "--window-size=1400,1000")
QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_prefect_server(directory: Path, url: str | None = None) -> Iterator[str]:
    """A local Prefect API URL: ``url`` when given, else a fresh ``prefect server start``.

    Sets PREFECT_API_URL/PREFECT_HOME in ``os.environ`` (call before importing prefect).
    A started server is stopped with SIGTERM on exit.
    """
    os.environ.update(QUIET)
    if url is not None:
        os.environ["PREFECT_API_URL"] = url
        yield url
        return
    home = directory / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({**QUIET, "PREFECT_HOME": str(home), "PREFECT_UI_API_URL": url})
    log = directory / "prefect-server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(["prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=directory)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not come up:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        os.environ.update({"PREFECT_API_URL": url, "PREFECT_HOME": str(home)})
        yield url
    finally:
        if "prefect" in sys.modules:  # ship buffered run logs before the API goes away
            from prefect.logging.handlers import APILogWorker

            with contextlib.suppress(Exception):
                APILogWorker.drain_all(timeout=10)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def demo_federation(directory: Path, say: Any = lambda _m: None) -> Iterator[Any]:
    """The demo's federation: images (built offline when missing), then
    :func:`v6flow_flows.local_federation.local_federation` with the demo's policy.

    Yields a :class:`v6flow_flows.local_federation.LocalFederation`; all processes stop on exit.
    """
    from v6flow import images
    from v6flow_flows import demo
    from v6flow_flows.local_federation import local_federation

    demo.ensure_images(demo.docker_engine(), say)
    with local_federation(directory / "federation", sidecar_image=images.BASE_IMAGE,
                          policy=demo.DEMO_POLICY, say=say) as fed:
        yield fed


def run_summary_flow(fed: Any, block_name: str) -> str:
    """Save the federation's researcher login as a Block, run the flow; the flow-run id."""
    from prefect_v6flow import V6flowServerCredentials
    from v6flow_flows.parameters import Federation
    from v6flow_flows.summary.flow import summary_statistics

    V6flowServerCredentials(url=fed.url, username=fed.username,
                            password=fed.password).save(block_name, overwrite=True)
    state: Any = asyncio.run(summary_statistics(  # type: ignore[arg-type]
        federation=Federation(collaboration_id=fed.collaboration_id,
                              credentials_block=block_name),
        return_state=True))
    if not state.is_completed():
        raise RuntimeError(f"the summary flow ended {state.type}: {state.message}")
    return str(state.state_details.flow_run_id)


def chromium() -> str:
    """Path of a chromium binary (``apt-get install -y chromium`` when missing)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no chromium found: apt-get install -y chromium")


def screenshot(page_url: str, out: Path, profile: Path) -> Path:
    """Headless-Chromium PNG of ``page_url`` (virtual time lets the SPA render first)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={out}", page_url],
                   check=True, capture_output=True, timeout=120)
    if not out.exists() or out.stat().st_size < 60_000:
        raise RuntimeError(f"screenshot missing or blank-looking (under 60 KB): {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the whole sequence; print the PNG path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--prefect-url", default=None,
                        help="reuse this Prefect API (http://127.0.0.1:PORT/api)")
    options = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="v6flow-ui-"))
    def say(message: str) -> None:
        print(f"- {message}", file=sys.stderr)

    try:
        with local_prefect_server(directory, options.prefect_url) as prefect_url:
            say(f"prefect server {prefect_url}")
            with demo_federation(directory, say) as fed:
                flow_run_id = run_summary_flow(fed, "v6flow-demo")
            say(f"flow run {flow_run_id} completed; federation stopped")
            ui = prefect_url.removesuffix("/api")
            path = screenshot(f"{ui}/runs/flow-run/{flow_run_id}", options.out.resolve(),
                              directory / "chromium")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
