"""Prefect flows as vantage6-style central tasks: the flow runs inside the algorithm container.

A researcher (or the unmodified vantage6 client) creates a task whose method is a flow's name,
for one organization. The node runs the image as usual; :func:`v6flow.algorithm.wrap_algorithm`
does not find the name in ``PKG_NAME`` and looks in the modules listed in
``V6FLOW_CENTRAL_FLOWS`` (set by the image's Dockerfile). When it finds a Prefect flow there,
:func:`run_central_flow`:

1. points Prefect at an *ephemeral* API with a private ``PREFECT_HOME`` (a copy of the
   migrated template baked into the image at ``/opt/v6flow/prefect-home``, so start-up skips
   the migrations), before Prefect is imported;
2. fills ``collaboration_id`` and ``image`` from the container token when the flow has those
   parameters and the task did not set them (subtasks must use the container's own image; a
   flow taking a ``Federation`` parameter gets them from the token when it connects), and
   moves flat keyword arguments such as ``retries`` into the flow's model parameter that has
   them as fields (:func:`fold_flat_kwargs`: v4 clients pass flat ``kwargs``);
3. calls the flow; the flow reaches the federation through the node proxy with the container
   token (:class:`ContainerConnection`): subtasks, push-based waits (``GET /events``, scoped
   to the job) and kills of its own subtasks on timeout all work as on a researcher's machine.

So the same flow runs on a researcher's machine (Prefect server or ephemeral) and as a central
task on a node, and a ``main(client, data)``-style algorithm and a flow are interchangeable
from the client's point of view. Prefect is imported only when a flow is actually run.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import shutil
import tempfile
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v6flow.algorithm._env import ContainerIdentity, read_token, require_env
from v6flow.errors import AlgorithmError

if TYPE_CHECKING:
    from v6flow.client import AsyncClient

#: Env var (set in the image's Dockerfile): comma-separated modules whose flows may be called.
CENTRAL_FLOWS_ENV = "V6FLOW_CENTRAL_FLOWS"
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
#: Parameters a central flow gets from its container token when the task leaves them out.
FROM_TOKEN = ("collaboration_id", "image")


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
        """A new client on the proxy with the container token; the caller closes it.

        It never encrypts: in an encrypted collaboration the node proxy encrypts subtask
        inputs and decrypts their results (the container holds no key).
        """
        from v6flow.client import AsyncClient

        return AsyncClient(self.base_url, token=self.token, by_node_proxy=True)

    def identity(self) -> ContainerIdentity:
        """What the container token says (task, collaboration, image...)."""
        return ContainerIdentity.from_token(self.token)

    def __repr__(self) -> str:  # never print the token
        return f"ContainerConnection(base_url={self.base_url!r})"


def central_flow_modules(environ: Mapping[str, str] | None = None) -> list[str]:
    """The modules named in ``V6FLOW_CENTRAL_FLOWS`` (empty when unset)."""
    env = os.environ if environ is None else environ
    return [name.strip() for name in env.get(CENTRAL_FLOWS_ENV, "").split(",") if name.strip()]


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
    for key, value in EPHEMERAL_PREFECT_SETTINGS.items():
        env.setdefault(key, value)
    return home


def find_central_flow(name: str, environ: MutableMapping[str, str] | None = None) -> Any:
    """The flow called ``name`` (its function name) in the ``V6FLOW_CENTRAL_FLOWS`` modules.

    Prepares the ephemeral Prefect environment first (importing a flow imports Prefect).

    Returns:
        The flow object, or None when no module lists such a flow.

    Raises:
        AlgorithmError: a listed module cannot be imported.
    """
    modules = central_flow_modules(environ)
    if not modules:
        return None
    prepare_ephemeral_prefect(environ)
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise AlgorithmError(
                f"cannot import central flow module {module_name!r} (listed in "
                f"{CENTRAL_FLOWS_ENV}): {exc}") from exc
        candidate = getattr(module, name, None)
        if is_flow(candidate):
            return candidate
    return None


def is_flow(value: Any) -> bool:
    """Whether ``value`` is a Prefect flow (checked without importing Prefect)."""
    return any(cls.__module__.startswith("prefect.") and cls.__name__ == "Flow"
               for cls in type(value).__mro__)


def run_central_flow(flow: Any, args: Sequence[Any], kwargs: Mapping[str, Any],
                     environ: Mapping[str, str] | None = None) -> Any:
    """Run ``flow`` as this container's central function and return its result.

    ``collaboration_id`` and ``image`` come from the container token when the flow takes
    them and the task did not pass them.

    Raises:
        Exception: whatever the flow raises (a failed flow run re-raises its error).
    """
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
    result = flow(*args, **call_kwargs)
    if inspect.isawaitable(result):
        return asyncio.run(_awaited(result))
    return result


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
