"""The Prefect CLI and workers (process, Docker) as subprocesses of a test (tests/deployments).

``PREFECT`` is the ``prefect`` script of the interpreter running the tests (the venv's), so
the worker and its flow-run processes use the same Python and packages as the tests even
when the venv's ``bin`` is not on ``PATH``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.deployments.prefect_server import PREFECT, REPO_ROOT, PrefectServer


def prefect(server: PrefectServer, *args: str, timeout: float = 180) -> str:
    """Run ``prefect *args`` against ``server`` from the repository root; its stdout.

    ``V6FLOW_PROJECT_DIR`` is the repository root (the pull step of the prefect.yaml files).
    """
    done = subprocess.run([PREFECT, *args], cwd=REPO_ROOT, timeout=timeout, check=False,
                          env=server.env(V6FLOW_PROJECT_DIR=str(REPO_ROOT)),
                          capture_output=True, text=True)
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def process_worker(server: PrefectServer, pool: str, log_path: Path,
                   worker_type: str | None = None) -> Iterator[Path]:
    """``prefect worker start --pool [--type]``, polling every second; two SIGINTs, then
    kill. ``worker_type`` ``docker`` starts prefect-docker's worker."""
    env = server.env(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="1")
    kind = ["--type", worker_type] if worker_type else []
    with log_path.open("ab") as out:
        proc = subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, *kind],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield log_path
    finally:
        for _ in range(2):  # the first SIGINT is forwarded to the flow run, the second exits
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
