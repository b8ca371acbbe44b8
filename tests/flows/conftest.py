"""Flow tests: the node-side partial package importable without installing it, and the
shared fixtures (summary image, researcher login)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

PARTIAL = Path(__file__).resolve().parents[2] / "flows" / "v6flow_flows" / "summary" / "partial"
if str(PARTIAL) not in sys.path:
    sys.path.insert(0, str(PARTIAL))

from tests.flows.fixtures import researcher, summary_image  # noqa: E402

__all__ = ["researcher", "summary_image"]
