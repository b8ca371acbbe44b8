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
import time
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from v6flow.algorithm._container import ContainerConnection, in_algorithm_container
from v6flow.algorithm._env import ContainerIdentity, read_token, require_env
from v6flow.algorithm._prefect_mode import (
    EPHEMERAL_PREFECT_SETTINGS,
    PREFECT_API_PATH,
    PREFECT_HOME_TEMPLATE,
    PREFECT_MODE_ENV,
    PREFECT_UI_HEADER,
    QUIET_PREFECT_SETTINGS,
    PrefectMode,
    PrefectPlan,
    prepare_ephemeral_prefect,
    prepare_prefect,
    probe_prefect_api,
    process_started_at,
    requested_mode,
)
from v6flow.errors import AlgorithmError

__all__ = [
    "CENTRAL_FLOWS_ENV",
    "EPHEMERAL_PREFECT_SETTINGS",
    "FROM_TOKEN",
    "PREFECT_API_PATH",
    "PREFECT_HOME_TEMPLATE",
    "PREFECT_MODE_ENV",
    "PREFECT_UI_HEADER",
    "QUIET_PREFECT_SETTINGS",
    "CentralFlow",
    "ContainerConnection",
    "PrefectMode",
    "PrefectPlan",
    "central_flow_entries",
    "central_flow_modules",
    "declared_flow",
    "find_central_flow",
    "fold_flat_kwargs",
    "in_algorithm_container",
    "is_flow",
    "prepare_ephemeral_prefect",
    "prepare_prefect",
    "probe_prefect_api",
    "process_started_at",
    "requested_mode",
    "run_central_flow",
]

log = logging.getLogger("v6flow.algorithm")

#: Env var (set in the image's Dockerfile): comma-separated modules whose flows may be called.
CENTRAL_FLOWS_ENV = "V6FLOW_CENTRAL_FLOWS"
#: Parameters a central flow gets from its container token when the task leaves them out.
FROM_TOKEN = ("collaboration_id", "image")


@dataclass(frozen=True)
class CentralFlow:
    """A flow found in ``V6FLOW_CENTRAL_FLOWS`` and the Prefect API it will report to."""

    flow: Any
    plan: PrefectPlan
    import_seconds: float = 0.0


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
    pay for the package's imports (pandas: about 0.3 s). A declared name must therefore not
    also be a partial function of the package: the flow would shadow it, and each subtask
    the flow creates would start the flow again (tests/flows/test_central_declarations.py
    checks the repository's images).

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
