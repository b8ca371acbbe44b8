"""The node's checks before its daemon starts: each failure names the setting and the fix.

``v6flow node start`` runs :func:`preflight` once, with short timeouts, and stops with a
message and an exit code when a check fails, instead of retrying for ever. Once the node
has started, a lost server is retried as before (:mod:`v6flow_node.daemon`).

Checks, in order (the first failure stops them):

1. ``task_dir`` can be created and written;
2. the Docker engine answers, and ``sidecar_image`` is present in it (builds never pull it);
3. ``server_url`` answers ``GET /health`` like a v6flow server: a refused connection, an
   unknown host, a TLS failure, a timeout, a 404 (wrong path: the URL must end with the API
   root, e.g. ``/api``) or an unhealthy server each get their own message;
4. ``api_key`` is accepted by ``POST /token/node`` (a 401 names ``api_key``).

Examples:
    >>> from v6flow_node.preflight import preflight
    >>> ready = preflight(settings, progress=print)                     # doctest: +SKIP
    connecting to http://127.0.0.1:7601/api
    >>> ready.node_id, ready.node_name                                  # doctest: +SKIP
    (3, 'hospital-a')
"""

from __future__ import annotations

import errno
import json
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from v6flow._http_errors import server_message
from v6flow_node.errors import NodeError
from v6flow_node.server_link import unverified_claims
from v6flow_node.settings import NodeSettings

Progress = Callable[[str], None]

#: Seconds to open a connection, and to wait for an answer, during the checks.
CONNECT_TIMEOUT = 5.0
ANSWER_TIMEOUT = 10.0
#: Placeholder in hints for where the settings came from (:attr:`PreflightError.where`).
_WHERE = "{where}"
_CONFIG_HINT = f"check server_url in {_WHERE} (or V6FLOW_NODE_SERVER_URL)"


class Failure(StrEnum):
    """What kind of thing is wrong; the CLI maps each to an exit code."""

    CONFIGURATION = "configuration"
    DOCKER = "docker"
    SERVER = "server"
    AUTHENTICATION = "authentication"


class PreflightError(NodeError):
    """A start-up check failed: ``setting`` (as in node.yaml) is wrong, ``hint`` says what to do.

    ``str()`` is one line: ``<setting> <value>: <problem> — <hint>`` (secrets are never shown);
    the hint names ``where`` the settings came from (the config file, once known).
    """

    def __init__(self, kind: Failure, setting: str, problem: str, hint: str, *,
                 shown_value: str | None = None) -> None:
        """Keep the parts; ``shown_value`` is printed after the setting (never a secret)."""
        super().__init__(setting, problem)
        self.kind = kind
        self.setting = setting
        self.problem = problem
        self.hint = hint
        self.shown_value = shown_value
        self.where = "the node's config file"

    def __str__(self) -> str:
        """``<setting> <value>: <problem> — <hint>``."""
        name = f"{self.setting} {self.shown_value}" if self.shown_value else self.setting
        return f"{name}: {self.problem} — {self.hint.replace(_WHERE, self.where)}"


@dataclass(frozen=True)
class Ready:
    """What the checks learned: who this node is on the server."""

    node_id: int
    node_name: str | None
    organization_id: int | None
    access_token: str

    def __repr__(self) -> str:
        """Without the token."""
        return (f"Ready(node_id={self.node_id}, node_name={self.node_name!r}, "
                f"organization_id={self.organization_id})")


def preflight(settings: NodeSettings, *, progress: Progress | None = None,
              transport: httpx.BaseTransport | None = None, check_docker: bool = True,
              config_file: str | None = None) -> Ready:
    """Run every start-up check (see the module docstring) and say who the node is.

    Args:
        settings: the node's validated settings.
        progress: callback for one-line progress messages ("connecting to …").
        transport: optional httpx transport (default: the network).
        check_docker: also check the engine and ``sidecar_image``.
        config_file: where the settings came from (named in the hints).

    Returns:
        The node's id, name and organization, and a fresh access token.

    Raises:
        PreflightError: a check failed; ``kind`` says which exit code fits.
    """
    say = progress or (lambda _msg: None)
    try:
        check_task_dir(settings)
        if check_docker:
            check_docker_engine(settings)
        say(f"connecting to {settings.server_url}")
        with httpx.Client(timeout=httpx.Timeout(ANSWER_TIMEOUT, connect=CONNECT_TIMEOUT),
                          transport=transport) as client:
            check_server(client, settings.server_url)
            return check_api_key(client, settings)
    except PreflightError as exc:
        if config_file:
            exc.where = config_file
        raise


# --- local checks ---------------------------------------------------------------------------

def check_task_dir(settings: NodeSettings) -> None:
    """``task_dir`` exists (or can be made) and this user can write in it.

    Raises:
        PreflightError: it cannot be created or written.
    """
    folder = settings.task_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PreflightError(
            Failure.CONFIGURATION, "task_dir", f"cannot create or write it "
            f"({exc.strerror or type(exc).__name__})",
            "choose a folder this user can write, or fix its owner and permissions",
            shown_value=str(folder)) from None


def check_docker_engine(settings: NodeSettings) -> None:
    """The Docker engine answers, and the sidecar image is present in it.

    Raises:
        PreflightError: no engine (``DOCKER``), or no ``sidecar_image`` (``CONFIGURATION``).
    """
    import docker
    import docker.errors

    from v6flow._images.engine import ENGINE_HELP

    try:
        client = docker.from_env(timeout=int(ANSWER_TIMEOUT))
        client.ping()
    except docker.errors.DockerException as exc:
        raise PreflightError(Failure.DOCKER, "Docker engine", f"cannot be reached ({exc})",
                             ENGINE_HELP) from None
    image = getattr(settings, "sidecar_image", None)
    try:
        if image:
            client.images.get(str(image))
    except docker.errors.ImageNotFound:
        raise PreflightError(
            Failure.CONFIGURATION, "sidecar_image", "not present in the local Docker engine "
            "(the node never pulls it)", "build it with `v6flow image build-base`, or set "
            "sidecar_image to a local image with python3 and v6flow",
            shown_value=str(image)) from None
    except docker.errors.DockerException as exc:
        raise PreflightError(Failure.DOCKER, "Docker engine", f"cannot list images ({exc})",
                             ENGINE_HELP) from None
    finally:
        client.close()


# --- the server -----------------------------------------------------------------------------

def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transport_problem(exc: httpx.TransportError, url: str) -> tuple[str, str]:
    """``(problem, hint)`` for a connection that failed before any HTTP answer."""
    host = httpx.URL(url).host
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return (f"the host name {host!r} cannot be resolved",
                    f"check the spelling of the host; {_CONFIG_HINT}")
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "not trusted"
            return (f"TLS certificate rejected ({reason})",
                    "use a certificate this host trusts (or add its CA to the system's "
                    f"trust store, or set SSL_CERT_FILE); {_CONFIG_HINT}")
        if isinstance(cause, ssl.SSLError):
            return (f"TLS handshake failed ({cause.reason or cause})",
                    "does the server speak https on this port? if it speaks plain http, "
                    f"use http:// in server_url; {_CONFIG_HINT}")
        if isinstance(cause, ConnectionRefusedError):
            return ("connection refused", f"is the server running, on this host and port? "
                                          f"{_CONFIG_HINT}")
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH,
                                                          errno.EHOSTUNREACH):
            return (f"host {host!r} unreachable ({os.strerror(cause.errno)})",
                    f"check the network, or {_CONFIG_HINT}")
    if isinstance(exc, httpx.ConnectTimeout):
        return (f"no connection within {CONNECT_TIMEOUT:g} s",
                f"is the host right, and is no firewall in the way? {_CONFIG_HINT}")
    if isinstance(exc, httpx.TimeoutException):
        return (f"connected, but no answer within {ANSWER_TIMEOUT:g} s",
                "is this the v6flow server's port (and is the server not overloaded)? "
                f"{_CONFIG_HINT}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return (f"the connection was closed without an HTTP answer ({exc or type(exc).__name__})",
                f"does the server use https (then write https://)? {_CONFIG_HINT}")
    return (f"cannot connect ({type(exc).__name__}: {exc})", _CONFIG_HINT)


def _server_error(url: str, problem: str, hint: str) -> PreflightError:
    return PreflightError(Failure.SERVER, "server_url", problem, hint, shown_value=url)


def _is_health_body(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and "database" in body


def check_server(client: httpx.Client, server_url: str) -> None:
    """``GET <server_url>/health`` answers 200 with the v6flow health body.

    Raises:
        PreflightError: (``SERVER``) not reachable, not a v6flow API at that path, or not
            healthy; the message names ``server_url`` and suggests a fix.
    """
    try:
        response = client.get(f"{server_url}/health")
    except httpx.TransportError as exc:
        raise _server_error(server_url, *transport_problem(exc, server_url)) from None
    if response.status_code == 200 and _is_health_body(response):
        return
    if response.status_code == 404 or (response.status_code == 200
                                       and not _is_health_body(response)):
        # a 404, or the server's web UI answering the page at / instead of the API
        better = _api_root_below(client, server_url)
        if better is None and response.status_code == 200:
            kind = response.headers.get("content-type", "no content type")
            raise _server_error(server_url, f"something answers, but not as a v6flow server "
                                            f"(GET /health gave {kind})",
                                f"point server_url at the v6flow server's API root; "
                                f"{_CONFIG_HINT}")
        hint = (f"did you mean {better}? set server_url to it" if better else
                "server_url must be the API root of a v6flow server, e.g. "
                f"http://127.0.0.1:7601/api; {_CONFIG_HINT}")
        raise _server_error(server_url, "no v6flow API at this path (GET /health answered "
                                        f"{response.status_code}, not the API's health)", hint)
    if response.status_code >= 500:
        raise _server_error(server_url, f"the server is not healthy (GET /health answered "
                                        f"{response.status_code}: {server_message(response)})",
                            "see the server's log (is its database up?)")
    raise _server_error(server_url, f"GET /health answered {response.status_code} "
                                    f"({server_message(response)})",
                        f"is a proxy in front of the server refusing it? {_CONFIG_HINT}")


def _api_root_below(client: httpx.Client, server_url: str) -> str | None:
    """``<server_url>/api`` when that is where a v6flow server answers (a missing ``/api``)."""
    if server_url.endswith("/api"):
        return None
    candidate = f"{server_url}/api"
    try:
        response = client.get(f"{candidate}/health")
    except httpx.TransportError:
        return None
    return candidate if response.status_code == 200 and _is_health_body(response) else None


def check_api_key(client: httpx.Client, settings: NodeSettings) -> Ready:
    """Log in with ``api_key`` and read the node's own record.

    Raises:
        PreflightError: (``AUTHENTICATION``) the server refuses the key; (``SERVER``) the
            server failed or went away meanwhile.
    """
    url = settings.server_url
    try:
        response = client.post(f"{url}/token/node",
                                json={"api_key": settings.api_key.get_secret_value()})
    except httpx.TransportError as exc:
        raise _server_error(url, *transport_problem(exc, url)) from None
    if response.status_code in (400, 401, 403):
        raise PreflightError(
            Failure.AUTHENTICATION, "api_key", f"the server at {url} refuses this key "
            f"({response.status_code}: {server_message(response)})",
            "use the key the server printed when this node was registered (it is shown "
            "only once; an administrator can register the node again), and check api_key "
            f"in {_WHERE} (or V6FLOW_NODE_API_KEY)")
    if response.status_code != 200:
        raise _server_error(url, f"POST /token/node answered {response.status_code} "
                                 f"({server_message(response)})", "see the server's log")
    token, node_id = _token_and_node(response)
    name, organization_id = _node_record(client, url, token, node_id)
    return Ready(node_id=node_id, node_name=name, organization_id=organization_id,
                 access_token=token)


def _token_and_node(response: httpx.Response) -> tuple[str, int]:
    try:
        token = str(response.json()["access_token"])
        claims: dict[str, Any] = unverified_claims(token)
        return token, int(claims["sub"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _server_error(str(response.request.url), f"the login answer is not a v6flow "
                                                       f"node token ({type(exc).__name__})",
                            "is server_url a v6flow server?") from None


def _node_record(client: httpx.Client, url: str, token: str,
                 node_id: int) -> tuple[str | None, int | None]:
    """The node's name and organization id (None when the record cannot be read)."""
    try:
        response = client.get(f"{url}/node/{node_id}",
                              headers={"Authorization": f"Bearer {token}"})
        body = response.json() if response.status_code == 200 else {}
    except (httpx.TransportError, json.JSONDecodeError, UnicodeDecodeError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    organization = body.get("organization")
    org_id = organization.get("id") if isinstance(organization, dict) else None
    name = body.get("name")
    return (str(name) if name else None), (int(org_id) if org_id is not None else None)


# --- after the daemon started ---------------------------------------------------------------

async def wait_online(server_url: str, ready: Ready, *, timeout: float = 120.0,
                      interval: float = 0.5) -> bool:
    """Poll the node's record until the server reports it ``online`` (or ``timeout``).

    Returns:
        True when the server reported it online, False on timeout or when the record
        cannot be read (this is progress reporting only; it never stops the node).
    """
    import asyncio

    headers = {"Authorization": f"Bearer {ready.access_token}"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=httpx.Timeout(ANSWER_TIMEOUT,
                                                       connect=CONNECT_TIMEOUT)) as client:
        while loop.time() < deadline:
            try:
                response = await client.get(f"{server_url}/node/{ready.node_id}",
                                            headers=headers)
                if response.status_code == 200 and response.json().get("status") == "online":
                    return True
                if response.status_code in (401, 403, 404):
                    return False
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
            await asyncio.sleep(interval)
    return False
