"""What each client call sends and how its answer is read: I/O-free, shared by both clients.

Every operation is a generator (sans-IO): it yields :class:`Call` objects, receives the
decoded JSON body of each answer, and returns the parsed value. The sync and the async
client only differ in how they drive it (:func:`v6flow.client._sync.Client._drive`,
:func:`v6flow.client._async.AsyncClient._drive`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from v6flow import wire
from v6flow.errors import DeserializationError
from v6flow.status import RunStatus

T = TypeVar("T")

#: Page size asked for in listings (the server default is 10).
PER_PAGE = 100

DEFAULT_DATABASES: tuple[dict[str, Any], ...] = ({"label": "default"},)


@dataclass(frozen=True)
class Call:
    """One HTTP request, relative to the API root (``path`` has no leading slash)."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None


Op = Generator[Call, Any, T]
"""An operation: yields calls, is sent each decoded answer body, returns the value."""


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def single(method: str, path: str, *, params: dict[str, Any] | None = None,
           json: Any = None) -> Op[Any]:
    """One request whose decoded body is the value."""
    body = yield Call(method, path, _drop_none(params or {}) or None, json)
    return body


def paged(path: str, params: dict[str, Any] | None = None) -> Op[list[dict[str, Any]]]:
    """All items of a paginated listing, following ``links.next`` (CONTRACT §3.3)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        query = {**_drop_none(params or {}), "page": page, "per_page": PER_PAGE}
        body = yield Call("GET", path, query)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise DeserializationError(f"GET /{path} did not answer a page")
        items.extend(body["data"])
        if not (body.get("links") or {}).get("next"):
            return items
        page += 1


def ref_id(value: Any) -> int | None:
    """The id of a HATEOAS reference ``{"id", "link", ...}`` (None when absent)."""
    if isinstance(value, dict) and value.get("id") is not None:
        return int(value["id"])
    return None


# -- tasks ------------------------------------------------------------------------------
def task_create_body(*, collaboration_id: int, organizations: Sequence[int], image: str,
                     method: str, args: Sequence[Any] | None = None,
                     kwargs: dict[str, Any] | None = None,
                     databases: Sequence[dict[str, Any]] | None = None,
                     name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """The ``POST /task`` body (CONTRACT §3.2): the same unencrypted input for every org."""
    if not organizations:
        raise ValueError("a task needs at least one organization")
    encoded = wire.input_to_wire(wire.make_input(method, list(args or []), dict(kwargs or {})))
    return {
        "name": name or method,
        "description": description or "",
        "image": image,
        "collaboration_id": collaboration_id,
        "organizations": [{"id": int(org), "input": encoded} for org in organizations],
        "databases": [dict(db) for db in (databases or DEFAULT_DATABASES)],
    }


def task_status(task_id: int) -> Op[RunStatus]:
    """``GET /task/<id>/status`` as a :class:`RunStatus`."""
    body = yield Call("GET", f"task/{task_id}/status")
    return RunStatus(body["status"])


def results_by_organization(task_id: int) -> Op[dict[int, Any]]:
    """``{organization_id: decoded result}`` of a task, over all pages of runs and results.

    Runs without a result (failed or unfinished) are left out.
    """
    runs = yield from paged("run", {"task_id": task_id})
    org_of_run = {int(run["id"]): ref_id(run.get("organization")) for run in runs}
    results = yield from paged("result", {"task_id": task_id})
    out: dict[int, Any] = {}
    for item in results:
        run_id = ref_id(item.get("run"))
        org_id = org_of_run.get(run_id) if run_id is not None else None
        encoded = item.get("result")
        if org_id is None or not encoded:
            continue
        out[org_id] = wire.result_from_wire(encoded)
    return out


def log_tail(log: str | None, lines: int = 20) -> str:
    """The last ``lines`` lines of a run log."""
    return "\n".join((log or "").splitlines()[-lines:])


# -- resource operations (the request shapes, once) -------------------------------------
JSON = dict[str, Any]


def organization_list(*, collaboration_id: int | None = None,
                      name: str | None = None) -> Op[list[JSON]]:
    """``GET /organization`` (all pages)."""
    return paged("organization", {"collaboration_id": collaboration_id, "name": name})


def organization_create(*, name: str, domain: str | None = None, country: str | None = None,
                        address1: str | None = None, zipcode: str | None = None) -> Op[JSON]:
    """``POST /organization``."""
    body = _drop_none({"name": name, "domain": domain, "country": country,
                       "address1": address1, "zipcode": zipcode})
    return single("POST", "organization", json=body)


def collaboration_list(*, organization_id: int | None = None,
                       name: str | None = None) -> Op[list[JSON]]:
    """``GET /collaboration`` (all pages)."""
    return paged("collaboration", {"organization_id": organization_id, "name": name})


def collaboration_create(*, name: str, organization_ids: Sequence[int],
                         encrypted: bool = False) -> Op[JSON]:
    """``POST /collaboration`` with ``organization_ids``."""
    body = {"name": name, "organization_ids": [int(o) for o in organization_ids],
            "encrypted": encrypted}
    return single("POST", "collaboration", json=body)


def node_list(*, collaboration_id: int | None = None,
              organization_id: int | None = None) -> Op[list[JSON]]:
    """``GET /node`` (all pages)."""
    return paged("node", {"collaboration_id": collaboration_id,
                          "organization_id": organization_id})


def node_create(*, collaboration_id: int, organization_id: int,
                name: str | None = None) -> Op[JSON]:
    """``POST /node``; the answer carries the plaintext ``api_key`` (shown once)."""
    body = _drop_none({"collaboration_id": collaboration_id,
                       "organization_id": organization_id, "name": name})
    return single("POST", "node", json=body)


def user_create(*, username: str, password: str, organization_id: int,
                firstname: str | None = None, lastname: str | None = None,
                email: str | None = None, roles: Sequence[int] | None = None,
                rules: Sequence[int] | None = None) -> Op[JSON]:
    """``POST /user``."""
    body = _drop_none({
        "username": username, "password": password, "organization_id": organization_id,
        "firstname": firstname or username, "lastname": lastname or username,
        "email": email or f"{username}@example.org",
        "roles": list(roles) if roles is not None else None,
        "rules": list(rules) if rules is not None else None,
    })
    return single("POST", "user", json=body)


def role_list(*, name: str | None = None) -> Op[list[JSON]]:
    """``GET /role`` (all pages)."""
    return paged("role", {"name": name})


def task_list(*, collaboration_id: int | None = None, parent_id: int | None = None,
              job_id: int | None = None, name: str | None = None,
              status: str | None = None) -> Op[list[JSON]]:
    """``GET /task`` (all pages)."""
    return paged("task", {"collaboration_id": collaboration_id, "parent_id": parent_id,
                          "job_id": job_id, "name": name, "status": status})


def task_get(task_id: int, *, include_results: bool = False) -> Op[JSON]:
    """``GET /task/<id>[?include=results]``."""
    params = {"include": "results"} if include_results else None
    return single("GET", f"task/{task_id}", params=params)


def task_kill(task_id: int) -> Op[Any]:
    """``POST /kill/task`` ``{"id"}``: nodes stop the task's containers."""
    return single("POST", "kill/task", json={"id": task_id})


def run_list(*, task_id: int | None = None, organization_id: int | None = None) -> Op[list[JSON]]:
    """``GET /run`` (all pages)."""
    return paged("run", {"task_id": task_id, "organization_id": organization_id})
