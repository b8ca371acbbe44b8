"""The ``v6flow demo``: a whole federation on this machine, one summary flow, one comparison.

Temp dir → server subprocess (SQLite) → 3 organizations with synthetic CSVs, a
collaboration and a researcher → 3 node subprocesses → base and summary images (built
offline if missing) → the ``summary_statistics`` flow under an ephemeral Prefect →
the federated table next to pandas on the pooled CSVs → everything stopped.

Every step reports through ``say``; the CLI (``v6flow.cli.demo_cmd``) renders the report.
The server also serves the web UI; its address and logins are said as soon as the server is
up, so one can watch the flow's tasks live. With ``hold`` (``v6flow demo --keep``) the
federation stays up after the report until ``hold`` returns (the CLI waits for Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from v6flow.errors import EngineUnavailable, V6FlowError
from v6flow_flows.local_federation import LocalFederation, local_federation

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
    ui_url: str | None = None


def ui_address(api_url: str) -> str:
    """The web UI's address for a server's API address (``…/api`` → ``…/``)."""
    return api_url.rstrip("/").removesuffix("/api") + "/"


# -- small helpers ----------------------------------------------------------------------
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
    from v6flow import images
    from v6flow_flows import summary as summary_pkg
    from v6flow_flows.summary import SUMMARY_IMAGE

    try:
        context = Path(summary_pkg.__file__).parent
        base = images.dockerfile_base(context) or images.BASE_IMAGE
        say(f"base image {base}")
        images.ensure_known_base(base, client=client, progress=lambda _line: None)
        base_id = client.images.get(base).id
        wanted = _source_hash(context, salt=str(base_id))
        labels = images.image_labels(client, SUMMARY_IMAGE)
        if labels is None or labels.get(SOURCE_LABEL) != wanted:
            say(f"building {SUMMARY_IMAGE} (offline)")
            images.build_algorithm_image(context, SUMMARY_IMAGE, client=client,
                                         labels={SOURCE_LABEL: wanted})
    except V6FlowError as exc:
        raise DemoError(f"image build failed: {exc}") from exc


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


def _run_flow(fed: LocalFederation) -> dict[str, Any]:
    from v6flow_flows.parameters import Federation, ServerParameters
    from v6flow_flows.summary.flow import summary_statistics

    server = ServerParameters(url=fed.url, username=fed.username,
                              password=fed.password)  # type: ignore[arg-type]
    result: dict[str, Any] = asyncio.run(summary_statistics(
        federation=Federation(collaboration_id=fed.collaboration_id, server=server)))
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
    return [str(c.name) for name in names
            for c in client.containers.list(all=True, filters={"label": f"{NODE_LABEL}={name}"})]


# -- the demo -----------------------------------------------------------------------------
def run_demo(*, dev_runtime: bool = False, keep: bool = False,
             sizes: Sequence[int] = (120, 80, 50), say: Say = lambda _m: None,
             hold: Callable[[DemoReport], None] | None = None) -> DemoReport:
    """Run the whole demo and return its report (see the module docstring).

    Args:
        dev_runtime: ask for the process runtime (refused: this build has none).
        keep: keep the temporary directory (database, CSVs, logs).
        sizes: rows per organization.
        say: receives one line per step.
        hold: called with the report while the federation still runs; the federation stops
            when it returns (``v6flow demo --keep`` waits for Ctrl-C there).

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
        with local_federation(directory, sidecar_image=images.BASE_IMAGE, sizes=sizes,
                              policy=DEMO_POLICY, say=say) as fed:
            node_names = fed.node_names
            timings["federation"] = time.monotonic() - started
            ui_url = ui_address(fed.url)
            say(f"web UI: {ui_url} (log in as {fed.username} / {fed.password}, or as root / "
                f"{fed.root_password} to administer)")
            say("running the summary_statistics flow under Prefect (ephemeral)")
            prefect_ready.join(timeout=180)
            federated = _run_flow(fed)
            timings["flow"] = time.monotonic() - started
            pooled = pooled_summary(fed.csvs)
            report = DemoReport(
                federated=federated, pooled=pooled,
                max_abs_difference=max_abs_difference(federated, pooled),
                categories_equal=federated["categorical"] == pooled["categorical"],
                wall_seconds=time.monotonic() - started,
                directory=directory if keep else None, timings=timings, ui_url=ui_url)
            if hold is not None:
                hold(report)
        left = _leftover_containers(node_names)
        if left:
            raise DemoError(f"containers left behind: {left}")
        succeeded = True
        return report
    except V6FlowError as exc:
        if isinstance(exc, DemoError):
            raise
        raise DemoError(f"{type(exc).__name__}: {exc} (logs in {directory})") from exc
    finally:
        if succeeded and not keep:  # a failed demo keeps its logs for inspection
            shutil.rmtree(directory, ignore_errors=True)
