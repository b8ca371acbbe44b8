"""Which Prefect API a central flow reports to, chosen before Prefect is imported.

:func:`prepare_prefect` reads ``V6FLOW_CENTRAL_PREFECT`` (:class:`PrefectMode`), asks the
server through the node proxy whether it forwards to a Prefect API (one request,
:func:`probe_prefect_api`) and sets Prefect's environment for the answer; see
:mod:`v6flow.algorithm.central` and docs/central-tasks.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from v6flow.algorithm._container import ContainerConnection
from v6flow.errors import AlgorithmError, MissingEnvironment

#: Env var (image or the node's ``algorithm_env``): which Prefect API a central flow uses.
PREFECT_MODE_ENV = "V6FLOW_CENTRAL_PREFECT"
#: The server's Prefect API below the proxy's base URL
#: (``v6flow_server.api.routes.prefect_proxy``).
PREFECT_API_PATH = "/prefect"
#: Header of ``GET /prefect/admin/version`` that names the Prefect UI root.
PREFECT_UI_HEADER = "x-v6flow-prefect-ui"
#: Seconds the server may take to say whether it has a Prefect API.
PROBE_TIMEOUT = 10.0
#: A migrated Prefect home made at image build time (``prefect server database upgrade``).
PREFECT_HOME_TEMPLATE = Path("/opt/v6flow/prefect-home")
#: Prefect settings of the in-container ephemeral API (only set when not set already).
EPHEMERAL_PREFECT_SETTINGS = {
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_LOGGING_COLORS": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
}
#: Prefect settings of every mode (only set when not set already): no telemetry, plain logs.
QUIET_PREFECT_SETTINGS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_COLORS": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
}

class PrefectMode(StrEnum):
    """How a central flow meets Prefect (``V6FLOW_CENTRAL_PREFECT``)."""

    #: The server's Prefect API when it has one, else ``none`` (the default).
    AUTO = "auto"
    #: The server's Prefect API through the node proxy; fail when the server has none.
    SERVER = "server"
    #: No Prefect API: the flow's function runs without Prefect's engine (no flow run, no
    #: task runs, no retries, no artifacts; Prefect tasks the flow calls directly fail).
    NONE = "none"
    #: Prefect's temporary server inside the container (the behaviour before the server
    #: forwarded Prefect requests: about 7 s of start-up, visible in no UI).
    EPHEMERAL = "ephemeral"


@dataclass(frozen=True)
class PrefectPlan:
    """The Prefect API a central flow run reports to (``mode`` is never ``auto``)."""

    mode: PrefectMode
    reason: str
    api_url: str | None = None
    token: str | None = field(default=None, repr=False)
    probe_seconds: float = 0.0

    def describe(self) -> str:
        """One line for the run log."""
        return f"Prefect: {self.reason}"


def prepare_ephemeral_prefect(environ: MutableMapping[str, str] | None = None,
                              template: Path = PREFECT_HOME_TEMPLATE) -> Path:
    """Give Prefect a private home (a copy of ``template`` when present) and ephemeral mode.

    Call before Prefect is imported. An explicit ``PREFECT_API_URL`` is removed: a container
    has no network but the proxy, so only the in-container API can work.

    Returns:
        The new ``PREFECT_HOME``.
    """
    env = os.environ if environ is None else environ
    home = Path(tempfile.mkdtemp(prefix="v6flow-prefect-"))
    if template.is_dir():
        shutil.copytree(template, home, dirs_exist_ok=True)
    env["PREFECT_HOME"] = str(home)
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_API_KEY", None)
    for key, value in {**EPHEMERAL_PREFECT_SETTINGS, **QUIET_PREFECT_SETTINGS}.items():
        env.setdefault(key, value)
    return home


def requested_mode(environ: Mapping[str, str] | None = None) -> PrefectMode:
    """``V6FLOW_CENTRAL_PREFECT`` (default ``auto``).

    Raises:
        AlgorithmError: an unknown value.
    """
    env = os.environ if environ is None else environ
    value = env.get(PREFECT_MODE_ENV, "").strip().lower() or PrefectMode.AUTO.value
    try:
        return PrefectMode(value)
    except ValueError:
        raise AlgorithmError(
            f"{PREFECT_MODE_ENV}={value!r}: use one of "
            f"{', '.join(mode.value for mode in PrefectMode)}") from None


def probe_prefect_api(connection: ContainerConnection,
                      timeout: float = PROBE_TIMEOUT) -> tuple[str | None, str]:
    """Ask the server, through the proxy, whether it forwards to a Prefect API.

    One plain request (``urllib``: no client to build, this runs before every central flow).

    Returns:
        ``(ui_url, reason)``: the Prefect UI root ("" when the server names none) when the
        API answers, else ``None`` and why not.
    """
    import json
    import urllib.error
    import urllib.request

    url = connection.base_url + PREFECT_API_PATH + "/admin/version"
    if not url.startswith(("http://", "https://")):
        return None, f"the proxy address {connection.base_url!r} is not an http URL"
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, headers={"Authorization": f"Bearer {connection.token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.headers.get(PREFECT_UI_HEADER, ""), "ok"
    except urllib.error.HTTPError as exc:
        body = exc.read()[:2000]
        try:
            why = str(json.loads(body).get("msg"))
        except (ValueError, AttributeError):
            why = body.decode(errors="replace")[:200]
        return None, f"{exc.code} {why}"
    except (OSError, ValueError) as exc:  # URLError is an OSError; a timeout too
        return None, f"the node proxy did not answer ({type(exc).__name__})"


def prepare_prefect(environ: MutableMapping[str, str] | None = None,
                    template: Path = PREFECT_HOME_TEMPLATE) -> PrefectPlan:
    """Choose the Prefect API of this container's flow run and set Prefect's environment.

    Call before Prefect is imported (see the module docstring for the modes).

    Raises:
        AlgorithmError: an unknown ``V6FLOW_CENTRAL_PREFECT``, or ``server`` while the
            server has no Prefect API.
    """
    env = os.environ if environ is None else environ
    mode = requested_mode(env)
    if mode is PrefectMode.EPHEMERAL:
        home = prepare_ephemeral_prefect(env, template)
        return PrefectPlan(mode=mode, reason=f"temporary server in the container ({home}; "
                                             f"{PREFECT_MODE_ENV}=ephemeral)")
    reason = f"{PREFECT_MODE_ENV}=none"
    started = time.perf_counter()
    if mode in (PrefectMode.AUTO, PrefectMode.SERVER):
        try:
            connection = ContainerConnection.from_environ(env)
        except MissingEnvironment as exc:
            ui, reason = None, f"not in a node container ({exc})"
        else:
            ui, reason = probe_prefect_api(connection)
        probe = time.perf_counter() - started
        if ui is not None:
            api_url = connection.base_url + PREFECT_API_PATH
            env.update({"PREFECT_API_URL": api_url, "PREFECT_API_KEY": connection.token,
                        "PREFECT_HOME": tempfile.mkdtemp(prefix="v6flow-prefect-"),
                        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"})
            if ui:
                env["PREFECT_UI_URL"] = ui
            for key, value in QUIET_PREFECT_SETTINGS.items():
                env.setdefault(key, value)
            return PrefectPlan(mode=PrefectMode.SERVER, api_url=api_url,
                               token=connection.token, probe_seconds=probe,
                               reason=f"the server's Prefect API{f' ({ui})' if ui else ''}, "
                                      "through the node proxy")
        if mode is PrefectMode.SERVER:
            raise AlgorithmError(f"{PREFECT_MODE_ENV}=server, but the server forwards to no "
                                 f"Prefect API: {reason}")
        reason = f"the server has no Prefect API ({reason})"
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_API_KEY", None)
    env.update({"PREFECT_HOME": tempfile.mkdtemp(prefix="v6flow-prefect-"),
                "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
                "PREFECT_LOGGING_TO_API_ENABLED": "false"})
    for key, value in QUIET_PREFECT_SETTINGS.items():
        env.setdefault(key, value)
    return PrefectPlan(mode=PrefectMode.NONE, probe_seconds=time.perf_counter() - started,
                       reason=f"none: {reason}; the flow's function runs without Prefect's "
                              "engine (no flow run, task runs, retries or artifacts)")


def process_started_at() -> float | None:
    """When this process started (epoch seconds, from ``/proc``; None where there is none).

    The run log carries it so a benchmark can tell the container's start from the rest.
    """
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
