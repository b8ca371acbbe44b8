"""v6flow.algorithm stays small: importing it loads no server, node, Docker or data stack."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("prefect", "fastapi", "sqlalchemy", "docker", "server", "node", "pandas",
             "pyarrow", "uvicorn", "structlog")


def test_import_loads_no_heavy_or_foreign_modules() -> None:
    """A fresh interpreter importing the public API loads none of the forbidden packages."""
    code = (
        "import json, sys\n"
        "from v6flow.algorithm import wrap_algorithm, data, algorithm_client, metadata, "
        "AlgorithmClient, RunMetaData, MockAlgorithmClient\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(proc.stdout) == []
