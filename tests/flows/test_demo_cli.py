"""``v6flow demo`` without a Docker engine: a clear message and exit code 1, fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_without_engine_says_how_to_get_one(tmp_path: Path) -> None:
    """With DOCKER_HOST pointing nowhere the demo explains and exits 1 (no traceback)."""
    # Prepare
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}",
           "COLUMNS": "200"}
    # Execute
    done = subprocess.run([sys.executable, "-m", "v6flow.cli.main", "demo"], env=env,
                          capture_output=True, text=True, timeout=60)
    # Assert
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "No Docker engine is reachable" in output
    assert "apt-get install" in output and "dockerd" in output
    assert "Traceback" not in output


def test_dev_runtime_without_engine_is_refused_clearly(tmp_path: Path) -> None:
    """--dev-runtime has no process runtime to fall back on: it says so and exits 1."""
    # Prepare
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}",
           "COLUMNS": "200"}
    # Execute
    done = subprocess.run([sys.executable, "-m", "v6flow.cli.main", "demo", "--dev-runtime"],
                          env=env, capture_output=True, text=True, timeout=60)
    # Assert
    assert done.returncode == 1
    assert "development" in done.stdout + done.stderr
