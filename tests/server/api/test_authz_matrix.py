"""Authorization matrix generated from the OpenAPI: nobody reaches a foreign object.

Two separate halves of a federation share nothing: *home* (organizations H and H2 in
collaboration CH) and *foreign* (F and F2 in CF). Every operation of ``/api/openapi.json`` is
called by every kind of home identity (no token, the root user, users of H with each default
role, the node of H, a container token of a home job) on foreign objects: path ids are real
foreign ids, id fields of bodies and id filters of lists name foreign objects.

- single objects and writes: the answer is 401, 403 or 404, never a 2xx and never a 5xx;
- lists: the answer may be 2xx, but no foreign object appears in it (its own id, or any
  relation link ``/api/<kind>/<id>`` of a foreign object).

Identities with the global Root role see everything by design: for them only "no 5xx" holds.
New operations are picked up from the OpenAPI; a new kind of path id must get its foreign
object in :data:`FOREIGN_KINDS` (the test says so). :data:`EXCEPTIONS` is the short table of
operations that answer 2xx without touching a foreign object.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, auth, login, unique
from v6flow.wire import input_to_wire, make_input

IMAGE = "v6flow-test/basic:latest"
ROLES = ("Root", "Collaboration Admin", "Organization Admin", "Researcher", "Viewer")
#: Identities that hold global rules: they see foreign objects by design.
GLOBAL_IDENTITIES = frozenset({"root", "user:Root"})
#: Path id name → the kind of object it names (``/api/<kind>/<id>``).
FOREIGN_KINDS = {
    "organization_id": "organization", "collaboration_id": "collaboration",
    "node_id": "node", "user_id": "user", "role_id": "role", "task_id": "task",
    "run_id": "run", "rule_id": "rule", "study_id": "study", "blob_id": "blob",
}
#: List path → the kind of its items (``/result`` items are runs).
LIST_KINDS = {"result": "run"}
#: Operations that answer 2xx without a foreign object, with why.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("POST", "/api/token/user"): "a public login; answers 401 to wrong credentials",
    ("POST", "/api/token/node"): "a public login; answers 401 to an unknown key",
    ("GET", "/api/health"): "public, holds nothing",
    ("GET", "/api/version"): "public, holds nothing",
    ("GET", "/api/blobstream/status"): "public, holds nothing",
    ("POST", "/api/blobstream"): "an upload is a new blob of the caller's own, named by nobody",
    ("DELETE", "/api/port"): "its run is a query parameter, which the matrix does not fill; "
                             "another node's run is refused in test_ports.py::"
                             "test_ports_of_another_nodes_run_are_refused",
    ("GET", "/api/vpn/algorithm/addresses"): "containers only, their own job's addresses: "
                                             "test_ports.py::test_addresses_never_leave_the_job",
    ("GET", "/api/rule/{rule_id}"): "rules are global, the same for everyone",
    ("POST", "/api/recover/lost"): "public; answers the same for any account, holds nothing",
    ("POST", "/api/recover/reset"): "public; only a mailed single-use token acts",
    ("POST", "/api/recover/2fa/lost"): "public; needs the account's password",
    ("POST", "/api/recover/2fa/reset"): "public; only a mailed single-use token acts",
}
STREAMS = {("GET", "/api/events")}
REFUSED = {401, 403, 404}
_LINK = re.compile(r"^/api/([a-z]+)/(\d+)$")


@dataclass
class Federation:
    """The ids of both halves, and the tokens of every home identity."""

    url: str
    foreign: dict[str, set[Any]] = field(default_factory=dict)  # ids (blobs: UUIDs)
    first: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str | None] = field(default_factory=dict)
    task_image: str = IMAGE


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: root's calls change foreign objects."""
    directory = tmp_path_factory.mktemp("authz")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_BLOBS__BACKEND": "local",
                                   "V6FLOW_SERVER_BLOBS__PATH": str(directory / "blobs")})
    yield proc
    proc.stop()


def _post(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = HTTP.post(f"{url}{path}", json=body, headers=auth(token))
    assert response.status_code in (200, 201), (path, response.text)
    return dict(response.json())


def _half(url: str, root: str, roles: dict[str, int]) -> dict[str, Any]:
    """Two organizations in a collaboration, a node each, a researcher and a task."""
    orgs = [_post(url, root, "/organization", {"name": unique("org")})["id"] for _ in range(2)]
    collab = _post(url, root, "/collaboration", {"name": unique("collab"),
                                                 "organization_ids": orgs})["id"]
    nodes = [_post(url, root, "/node", {"collaboration_id": collab, "organization_id": org})
             for org in orgs]
    password = secrets.token_urlsafe(12)
    researcher = _post(url, root, "/user", {
        "username": unique("researcher"), "password": password, "organization_id": orgs[0],
        "roles": [roles["Researcher"]]})
    token = login(url, researcher["username"], password)
    task = _post(url, token, "/task", {
        "image": IMAGE, "collaboration_id": collab, "name": unique("task"),
        "organizations": [{"id": org, "input": input_to_wire(make_input("echo"))}
                          for org in orgs]})
    runs = HTTP.get(f"{url}/run", params={"task_id": task["id"]}, headers=auth(root)).json()
    study = _post(url, root, "/study", {"name": unique("study"), "collaboration_id": collab,
                                        "organization_ids": orgs})
    role = _post(url, root, "/role", {"name": unique("role"), "organization_id": orgs[0],
                                      "rules": []})
    return {"orgs": orgs, "collab": collab, "nodes": nodes, "user": researcher["id"],
            "task": task["id"], "runs": [r["id"] for r in runs["data"]],
            "run_of": {r["organization"]["id"]: r["id"] for r in runs["data"]},
            "study": study["id"], "role": role["id"]}


@pytest.fixture(scope="module")
def federation(matrix_server: ServerProcess) -> Federation:
    """Home and foreign halves, and a token for every kind of home identity."""
    url = matrix_server.url
    root = login(url, "root", matrix_server.root_password)
    roles = {r["name"]: r["id"] for r in HTTP.get(f"{url}/role", params={"per_page": 100},
                                                  headers=auth(root)).json()["data"]}
    home, away = _half(url, root, roles), _half(url, root, roles)
    fed = Federation(url=url)
    fed.foreign = {"organization": set(away["orgs"]), "collaboration": {away["collab"]},
                   "node": {n["id"] for n in away["nodes"]}, "user": {away["user"]},
                   "task": {away["task"]}, "run": set(away["runs"]),
                   "role": {away["role"]}, "study": {away["study"]},
                   "rule": {1}}
    fed.first = {kind: min(ids) for kind, ids in fed.foreign.items()}
    # the foreign node reports a result, so results of foreign runs exist
    foreign_node = HTTP.post(f"{url}/token/node", json={"api_key": away["nodes"][0]["api_key"]}
                             ).json()["access_token"]
    for run_id in away["runs"]:
        HTTP.patch(f"{url}/run/{run_id}", headers=auth(foreign_node),
                   json={"status": "active", "log": "foreign log"})
    # ... and one of them a result in the blob store
    blob = HTTP.post(f"{url}/blobstream", content=b"Zm9yZWlnbg==", headers=auth(foreign_node)
                     ).json()["uuid"]
    HTTP.patch(f"{url}/run/{away['run_of'][away['orgs'][0]]}", headers=auth(foreign_node),
               json={"result": blob})
    fed.foreign["blob"], fed.first["blob"] = {blob}, blob
    fed.tokens["anonymous"] = None
    fed.tokens["root"] = root
    for name in ROLES:
        password = secrets.token_urlsafe(12)
        user = _post(url, root, "/user", {"username": unique(name.replace(" ", "-").lower()),
                                          "password": password,
                                          "organization_id": home["orgs"][0],
                                          "roles": [roles[name]]})
        fed.tokens[f"user:{name}"] = login(url, user["username"], password)
    node = HTTP.post(f"{url}/token/node", json={"api_key": home["nodes"][0]["api_key"]}
                     ).json()["access_token"]
    fed.tokens["node"] = node
    # a node gets a container token only for its own run once it started it
    HTTP.patch(f"{url}/run/{home['run_of'][home['orgs'][0]]}", headers=auth(node),
               json={"status": "initializing"})
    fed.tokens["container"] = HTTP.post(f"{url}/token/container", headers=auth(node), json={
        "task_id": home["task"], "image": IMAGE}).json()["container_token"]
    return fed


def _path_of(path: str, fed: Federation) -> str:
    """The path with every id parameter replaced by a foreign object's id."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in FOREIGN_KINDS, (
            f"no foreign object for path parameter {{{name}}} of {path}: add its kind to "
            "FOREIGN_KINDS and create such an object in the foreign half")
        return str(fed.first[FOREIGN_KINDS[name]])

    return re.sub(r"\{([a-z_]+)\}", replace, path)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _resolve(spec, options[0]) if options else schema
    return schema


def _kind_of_field(name: str, context: str) -> str | None:
    if name in FOREIGN_KINDS:
        return FOREIGN_KINDS[name]
    singular = name.removesuffix("_ids").removesuffix("s")
    if name.endswith("_ids") or f"{singular}_id" in FOREIGN_KINDS:
        return FOREIGN_KINDS.get(f"{singular}_id")
    if name == "id":
        return context
    return None


def _value(spec: dict[str, Any], schema: dict[str, Any], name: str, context: str,
           fed: Federation) -> Any:
    """A value for one body field: foreign ids where the field names an object."""
    schema = _resolve(spec, schema)
    kind = _kind_of_field(name, context)
    kind_type = schema.get("type")
    if kind_type == "integer":
        return fed.first.get(kind or "", 1)
    if kind_type == "array":
        items = schema.get("items", {})
        if kind in fed.first and _resolve(spec, items).get("type") == "integer":
            return [fed.first[kind]]
        item_context = FOREIGN_KINDS.get(f"{name.removesuffix('s')}_id", context)
        if _resolve(spec, items).get("type") == "object":
            return [_body(spec, items, item_context, fed)]
        return []
    if kind_type == "object":
        return _body(spec, schema, context, fed)
    if kind_type == "boolean":
        return False
    if name == "image":
        return fed.task_image
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if name == "input":
        return input_to_wire(make_input("echo"))
    return unique("x").ljust(schema.get("minLength", 0), "x")


def _body(spec: dict[str, Any], schema: dict[str, Any], context: str,
          fed: Federation) -> dict[str, Any]:
    """Required fields and every id field of a body schema, ids naming foreign objects."""
    schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    body = {}
    for name, field_schema in schema.get("properties", {}).items():
        if name in required or _kind_of_field(name, context) is not None:
            body[name] = _value(spec, field_schema, name, context, fed)
    return body


def _context(path: str) -> str:
    """The kind a bare ``id`` in the body names: ``/kill/task`` → task, ``/kill/node/...``."""
    for part in reversed(path.strip("/").split("/")):
        if f"{part}_id" in FOREIGN_KINDS:
            return FOREIGN_KINDS[f"{part}_id"]
    return "task"


def _leaks(value: Any, fed: Federation) -> list[str]:
    """Foreign relation links anywhere in ``value``."""
    found: list[str] = []
    if isinstance(value, dict):
        link = value.get("link")
        match = _LINK.match(link) if isinstance(link, str) else None
        if match and int(match.group(2)) in fed.foreign.get(match.group(1), set()):
            found.append(link)
        for item in value.values():
            found += _leaks(item, fed)
    elif isinstance(value, list):
        for item in value:
            found += _leaks(item, fed)
    return found


def _list_leaks(path: str, answer: dict[str, Any], fed: Federation) -> list[str]:
    """Foreign objects in a page: items that are foreign, and foreign links inside items."""
    name = path.rstrip("/").rsplit("/", 1)[1]
    kind = LIST_KINDS.get(name, name)
    own = fed.foreign.get(kind, set()) if kind != "rule" else set()
    found = [f"/api/{kind}/{item['id']}" for item in answer.get("data", [])
             if isinstance(item, dict) and item.get("id") in own]
    return found + [link for link in _leaks(answer.get("data", []), fed)
                    if not link.startswith("/api/rule/")]


def _call(fed: Federation, method: str, path: str, token: str | None,
          **kwargs: Any) -> httpx.Response:
    headers = auth(token) if token else {}
    return HTTP.request(method, f"{fed.url.removesuffix('/api')}{path}", headers=headers,
                        timeout=30, **kwargs)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if (method.upper(), path) not in STREAMS]


def _requests(spec: dict[str, Any], method: str, path: str, operation: dict[str, Any],
              fed: Federation) -> list[dict[str, Any]]:
    """The calls of one operation: plain, and for lists once per foreign id filter."""
    concrete = _path_of(path, fed)
    call: dict[str, Any] = {"path": concrete}
    body_schema = (operation.get("requestBody", {}).get("content", {})
                   .get("application/json", {}).get("schema"))
    if body_schema is not None:
        call["json"] = _body(spec, body_schema, _context(path), fed)
    calls = [call]
    if method == "GET" and "{" not in path:
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        per_page = {"per_page": 1000} if "per_page" in names else {}
        call["params"] = per_page
        calls += [{"path": concrete, "params": {**per_page, name: fed.first[FOREIGN_KINDS[name]]}}
                  for name in names if name in FOREIGN_KINDS]
    return calls


def test_the_matrix_can_see_a_leak(federation: Federation) -> None:
    """Control: root's lists do show foreign objects, so the leak detector is not blind."""
    fed = federation
    for path in ("/api/organization", "/api/run", "/api/task", "/api/node"):
        answer = _call(fed, "GET", path, fed.tokens["root"], params={"per_page": 1000}).json()
        assert _list_leaks(path, answer, fed), path


def test_no_identity_reaches_a_foreign_object(federation: Federation) -> None:
    """Every operation by every home identity: refused or leak-free, never a 5xx."""
    fed = federation
    spec = HTTP.get(f"{fed.url}/openapi.json").json()
    operations = _operations(spec)
    problems: list[str] = []
    # Root-like identities last: they may change or delete foreign objects.
    order = sorted(fed.tokens, key=lambda who: who in GLOBAL_IDENTITIES)
    for who in order:
        token = fed.tokens[who]
        for method, path, operation in operations:
            for call in _requests(spec, method, path, operation, fed):
                response = _call(fed, method, call.pop("path"), token, **call)
                status = response.status_code
                where = f"{who:>26}  {method} {path} {call.get('params', '')} -> {status}"
                if status >= 500:
                    problems.append(f"{where}: server error")
                elif who in GLOBAL_IDENTITIES or (method, path) in EXCEPTIONS or status >= 300:
                    if status not in REFUSED and 300 <= status < 500 \
                            and who not in GLOBAL_IDENTITIES \
                            and (method, path) not in EXCEPTIONS:
                        problems.append(f"{where}: refused with {status}, not 401/403/404 "
                                        f"({response.text[:200]})")
                elif method == "GET" and "{" not in path:
                    leaks = _list_leaks(path, response.json(), fed)
                    if leaks:
                        problems.append(f"{where}: lists foreign objects {leaks[:5]}")
                else:
                    problems.append(f"{where}: a foreign object was reached "
                                    f"({response.text[:200]})")
    assert len(operations) >= 35
    assert not problems, "\n".join(problems)
