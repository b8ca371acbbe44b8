"""`v6flow node start` exit codes against a real server."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from node.exit_codes import HELP, ExitCode
from tests.fixtures.federation import write_node_config


def test_unknown_api_key_exits_with_authentication_code(server: Any, base_image: str,
                                                        tmp_path: Path) -> None:
    """A key the server does not know stops the node with exit code 3 and a clear line."""
    # Prepare
    csv = tmp_path / "d.csv"
    csv.write_text("a\n1\n")
    config = write_node_config(tmp_path / "node.yaml", server_url=server.url,
                               api_key=str(uuid.uuid4()), name="nobody", task_dir=tmp_path,
                               csv_path=csv, sidecar_image=base_image)
    # Execute
    proc = subprocess.run([sys.executable, "-m", "v6flow.cli.main", "node", "start",
                           "--config", str(config)], capture_output=True, text=True,
                          timeout=60, check=False)
    # Assert
    assert proc.returncode == ExitCode.AUTHENTICATION, proc.stderr
    assert HELP[ExitCode.AUTHENTICATION] in proc.stderr
    assert "Traceback" not in proc.stderr
