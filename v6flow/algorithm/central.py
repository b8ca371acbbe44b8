"""Prefect flows as vantage6-style central tasks: the flow runs inside the algorithm container.

A researcher (or the unmodified vantage6 client) creates a task whose method is a flow's name,
for one organization. The node runs the image as usual; :func:`v6flow.algorithm.wrap_algorithm`
does not find the name in ``PKG_NAME`` and looks in the modules listed in
``V6FLOW_CENTRAL_FLOWS`` (set by the image's Dockerfile). When it finds a Prefect flow there:

1. :func:`prepare_prefect` decides, before Prefect is imported, which Prefect API the flow
   run reports to (``V6FLOW_CENTRAL_PREFECT``, :class:`PrefectMode`). By default it asks the
   server, through the node proxy, whether it has one (``GET /prefect/admin/version``): then
   ``PREFECT_API_URL`` is the proxy's ``/prefect`` and ``PREFECT_API_KEY`` the container
   token, so the flow run, its per-organization task runs, logs and artifacts appear in the
   collaboration's Prefect UI, tagged with the task, job and collaboration. Without one the
   flow's function runs without Prefect's engine (no API at all), and the run log says so;
   ``V6FLOW_CENTRAL_PREFECT=ephemeral`` runs Prefect's temporary server in the container
   instead (a private ``PREFECT_HOME`` copied from the migrated template baked into the
   image; about 7 s of start-up).
2. :func:`run_central_flow` fills ``collaboration_id`` and ``image`` from the container token
   when the flow has those parameters and the task did not set them (subtasks must use the
   container's own image; a flow taking a ``Federation`` parameter gets them from the token
   when it connects), and moves flat keyword arguments such as ``retries`` into the flow's
   model parameter that has them as fields (:func:`fold_flat_kwargs`: v4 clients pass flat
   ``kwargs``);
3. it calls the flow; the flow reaches the federation through the node proxy with the
   container token (:class:`ContainerConnection`): subtasks, push-based waits (``GET
   /events``, scoped to the job) and kills of its own subtasks on timeout all work as on a
   researcher's machine. With a Prefect API, the logs and events still queued are sent
   before the result is returned (:mod:`v6flow.prefect.container`).

So the same flow runs on a researcher's machine (Prefect server or ephemeral) and as a central
task on a node, and a ``main(client, data)``-style algorithm and a flow are interchangeable
from the client's point of view. Prefect is imported only when a flow is actually run, and
this module never imports it itself.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import logging
import os
import shutil
import tempfile
import time
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v6flow.algorithm._env import ContainerIdentity, read_token, require_env
from v6flow.errors import AlgorithmError, MissingEnvironment

if TYPE_CHECKING:
    from v6flow.client import AsyncClient

log = logging.getLogger("v6flow.algorithm")

#: Env var (set in the image's Dockerfile): comma-separated modules whose flows may be called.
CENTRAL_FLOWS_ENV = "V6FLOW_CENTRAL_FLOWS"
#: Env var (image or the node's ``algorithm_env``): which Prefect API a central flow uses.
PREFECT_MODE_ENV = "V6FLOW_CENTRAL_PREFECT"
#: The server's Prefect API below the proxy's base URL (``server/api/routes/prefect_proxy``).
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
#: Parameters a central flow gets from its container token when the task leaves them out.
FROM_TOKEN = ("collaboration_id", "image")


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


@dataclass(frozen=True)
class CentralFlow:
    """A flow found in ``V6FLOW_CENTRAL_FLOWS`` and the Prefect API it will report to."""

    flow: Any
    plan: PrefectPlan
    import_seconds: float = 0.0


def in_algorithm_container(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a node's algorithm container (the contract env is set)."""
    env = os.environ if environ is None else environ
    return all(env.get(name) for name in ("TOKEN_FILE", "HOST"))


@dataclass(frozen=True)
class ContainerConnection:
    """The node proxy and the container token: a client source for ``run_partial``.

    Matches :class:`v6flow.prefect.tasks.AsyncClientFactory` (``get_async_client()``), like
    the credentials Block does for a researcher.
    """

    base_url: str
    token: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ContainerConnection:
        """Read ``HOST``, ``PORT``, ``API_PATH`` and ``TOKEN_FILE`` (already decoded).

        Raises:
            MissingEnvironment: one of them is not set.
        """
        env = dict(os.environ if environ is None else environ)
        host, port = require_env("HOST", env), env.get("PORT", "")
        base = f"{host}:{port}" if port else host
        return cls(base_url=base + env.get("API_PATH", ""),
                   token=read_token(require_env("TOKEN_FILE", env)))

    def get_async_client(self) -> AsyncClient:
        """A new client on the proxy with the container token; the caller closes it."""
        from v6flow.client import AsyncClient

        return AsyncClient(self.base_url, token=self.token)

    def identity(self) -> ContainerIdentity:
        """What the container token says (task, collaboration, image...)."""
        return ContainerIdentity.from_token(self.token)

    def __repr__(self) -> str:  # never print the token
        return f"ContainerConnection(base_url={self.base_url!r})"


def central_flow_entries(environ: Mapping[str, str] | None = None
                         ) -> list[tuple[str, str | None]]:
    """``V6FLOW_CENTRAL_FLOWS`` as ``(module, flow name or None)``, in order.

    Entries are comma-separated ``module`` (its flows are looked up after the package) or
    ``module:flow`` (a flow the image declares: the wrapper goes straight to it, without
    importing ``PKG_NAME``).
    """
    env = os.environ if environ is None else environ
    entries: list[tuple[str, str | None]] = []
    for entry in env.get(CENTRAL_FLOWS_ENV, "").split(","):
        module, _, name = (part.strip() for part in entry.partition(":"))
        if module:
            entries.append((module, name or None))
    return entries


def central_flow_modules(environ: Mapping[str, str] | None = None) -> list[str]:
    """The modules named in ``V6FLOW_CENTRAL_FLOWS`` (empty when unset)."""
    return list(dict.fromkeys(module for module, _ in central_flow_entries(environ)))


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


def find_central_flow(name: str,
                      environ: MutableMapping[str, str] | None = None) -> CentralFlow | None:
    """The flow called ``name`` (its function name) in the ``V6FLOW_CENTRAL_FLOWS`` modules.

    Chooses and prepares the Prefect API first (:func:`prepare_prefect`): importing a flow
    imports Prefect, which reads its settings.

    Returns:
        The flow and its Prefect plan, or None when no module lists such a flow.

    Raises:
        AlgorithmError: a listed module cannot be imported, or :func:`prepare_prefect` failed.
    """
    return _find(name, central_flow_modules(environ), environ, declared=False)


def declared_flow(name: str,
                  environ: MutableMapping[str, str] | None = None) -> CentralFlow | None:
    """The flow ``name`` when ``V6FLOW_CENTRAL_FLOWS`` declares it (``module:name``).

    The wrapper asks this before it imports the partial package, so a central flow does not
    pay for the package's imports (pandas: about 0.3 s).

    Returns:
        The flow and its Prefect plan, or None when no entry declares ``name``.

    Raises:
        AlgorithmError: the declared module cannot be imported or has no such flow.
    """
    modules = [module for module, flow in central_flow_entries(environ) if flow == name]
    return _find(name, modules, environ, declared=True) if modules else None


def _find(name: str, modules: Sequence[str], environ: MutableMapping[str, str] | None, *,
          declared: bool) -> CentralFlow | None:
    if not modules:
        return None
    plan = prepare_prefect(environ)
    started = time.perf_counter()
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise AlgorithmError(
                f"cannot import central flow module {module_name!r} (listed in "
                f"{CENTRAL_FLOWS_ENV}): {exc}") from exc
        candidate = getattr(module, name, None)
        if is_flow(candidate):
            return CentralFlow(flow=candidate, plan=plan,
                               import_seconds=time.perf_counter() - started)
    if declared:
        raise AlgorithmError(f"{CENTRAL_FLOWS_ENV} declares {name!r} in "
                             f"{', '.join(modules)}, which has no such flow")
    return None


def is_flow(value: Any) -> bool:
    """Whether ``value`` is a Prefect flow (checked without importing Prefect)."""
    return any(cls.__module__.startswith("prefect.") and cls.__name__ == "Flow"
               for cls in type(value).__mro__)


def run_central_flow(central: CentralFlow, args: Sequence[Any], kwargs: Mapping[str, Any],
                     environ: Mapping[str, str] | None = None) -> Any:
    """Run the flow as this container's central function and return its result.

    ``collaboration_id`` and ``image`` come from the container token when the flow takes
    them and the task did not pass them. The run log gets the Prefect plan and where the
    time went (probe, import, flow run, sending the last logs and events).

    Raises:
        Exception: whatever the flow raises (a failed flow run re-raises its error).
    """
    flow, plan = central.flow, central.plan
    identity = ContainerIdentity.from_token(
        read_token(require_env("TOKEN_FILE", dict(os.environ if environ is None else environ))))
    call_kwargs = fold_flat_kwargs(flow.fn, kwargs)
    parameters = inspect.signature(flow.fn).parameters
    bound = inspect.signature(flow.fn).bind_partial(*args)
    for name in FROM_TOKEN:
        value = getattr(identity, name)
        if name in parameters and name not in call_kwargs and name not in bound.arguments \
                and value is not None:
            call_kwargs[name] = value
    born = process_started_at()
    age = f"; ready {time.time() - born:.2f} s after the process started at {born:.3f}" \
        if born is not None else ""
    log.info("%s; probe %.2f s, flow import %.2f s%s", plan.describe(), plan.probe_seconds,
             central.import_seconds, age)
    try:
        return _run(flow, plan, args, call_kwargs)
    finally:
        # The process ends right after the result is written: a frozen heap is not
        # collected again at exit (Prefect and pydantic objects: 0.2-0.3 s otherwise).
        gc.freeze()


def _run(flow: Any, plan: PrefectPlan, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    started = time.perf_counter()
    if plan.mode is PrefectMode.NONE:
        from v6flow.prefect.container import run_without_api

        result = run_without_api(flow, args, kwargs)
        log.info("flow function finished in %.2f s", time.perf_counter() - started)
        return result
    if plan.mode is PrefectMode.EPHEMERAL:
        return _result(flow(*args, **kwargs))
    from v6flow.prefect.container import flush, send_events_over_http

    if plan.api_url is None or plan.token is None:
        raise AlgorithmError("a server Prefect plan without an API URL")
    sink = send_events_over_http(plan.api_url, plan.token)
    try:
        return _result(flow(*args, **kwargs))
    finally:
        ran = time.perf_counter() - started
        sent = flush(sink)
        log.info("flow run finished in %.2f s; last logs and %d events sent in %.2f s "
                 "(%d not sent)", ran, sink.sent, sent, sink.dropped)


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


def _result(value: Any) -> Any:
    if inspect.isawaitable(value):
        return asyncio.run(_awaited(value))
    return value


def fold_flat_kwargs(fn: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Move keyword arguments ``fn`` does not take into its pydantic-model parameter that has
    them as fields: a v4 client passes ``{"retries": 0}`` flat, the flow takes them inside
    ``federation: Federation``. Values given inside the model parameter win.
    """
    from pydantic import BaseModel

    parameters = inspect.signature(fn).parameters
    call_kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    flat = {k: v for k, v in kwargs.items() if k not in parameters}
    if not flat:
        return call_kwargs
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):  # an annotation that does not resolve: nothing to fold
        hints = {}
    for name in parameters:
        hint = hints.get(name)
        models = [t for t in (typing.get_args(hint) or (hint,))
                  if isinstance(t, type) and issubclass(t, BaseModel)]
        fields = {f for model in models for f in model.model_fields}
        taken = {k: flat.pop(k) for k in list(flat) if k in fields}
        if taken:
            given = call_kwargs.get(name)
            if isinstance(given, BaseModel):
                given = given.model_dump(exclude_unset=True)
            call_kwargs[name] = {**taken, **(given or {})}
    call_kwargs.update(flat)  # unknown to the flow: its parameter check names them
    return call_kwargs


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
