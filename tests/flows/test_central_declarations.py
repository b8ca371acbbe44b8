"""A flow image's declared central flows never shadow its partial functions.

The wrapper runs a flow declared in ``V6FLOW_CENTRAL_FLOWS`` as ``module:name`` without
importing the partial package (:func:`v6flow.algorithm.central.declared_flow`). Were ``name``
also a partial function of the package, every subtask the flow creates with that method
would start the flow again, without end (the crosstab image did: flow and partial were both
``crosstab``).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows" / "v6flow_flows"
DOCKERFILES = sorted(FLOWS.glob("*/Dockerfile"))


def _env(dockerfile: Path) -> dict[str, str]:
    """The ``ENV`` keys of a Dockerfile (``KEY=value`` pairs, continued lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


DECLARING = [d for d in DOCKERFILES if ":" in _env(d).get("V6FLOW_CENTRAL_FLOWS", "")]


def test_every_flow_image_is_checked() -> None:
    """The flows that declare central flows are all found (the glob did not miss them)."""
    assert {"summary", "crosstab", "logistic", "survival"} <= {d.parent.name for d in DECLARING}


@pytest.mark.parametrize("dockerfile", DECLARING, ids=lambda d: d.parent.name)
def test_a_declared_flow_is_not_a_partial_function(dockerfile: Path) -> None:
    """No ``module:name`` of ``V6FLOW_CENTRAL_FLOWS`` names a function of ``PKG_NAME``."""
    env = _env(dockerfile)
    declared = [entry.partition(":")[2] for entry in
                env.get("V6FLOW_CENTRAL_FLOWS", "").split(",") if ":" in entry]
    assert declared and "PKG_NAME" in env
    sys.path.insert(0, str(dockerfile.parent / "partial"))
    try:
        package = importlib.import_module(env["PKG_NAME"])
    finally:
        sys.path.remove(str(dockerfile.parent / "partial"))
    flow_module = importlib.import_module(env["V6FLOW_CENTRAL_FLOWS"].split(",")[0]
                                          .partition(":")[0])
    for name in declared:
        assert hasattr(flow_module, name), f"{name} is not in its flow module"
        assert not hasattr(package, name), (
            f"{dockerfile.parent.name}: the flow {name!r} shadows the partial "
            f"{env['PKG_NAME']}.{name}")
