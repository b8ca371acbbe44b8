"""What each client call sends and how its answer is read: I/O-free, shared by both clients.

Every operation is a generator (sans-IO): it yields :class:`Call` objects (or
:class:`Subject`, a question for the client itself), receives the decoded JSON body of each
answer, and returns the parsed value. Request bodies are built with the request models of
:mod:`v6flow.schemas` and answers parsed with its response models, so the client reads
exactly what the server writes. The sync and the async client only differ in how they drive
an operation (:meth:`v6flow.client.Client.drive`, :meth:`v6flow.client.AsyncClient.drive`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from v6flow import wire
from v6flow.client._e2e import ClientEncryption, crypto_module
from v6flow.errors import (
    BadRequest,
    DeserializationError,
    NoPrivateKey,
    NoPublicKey,
)
from v6flow.schemas import (
    BlobStoreStatusOut,
    CollaborationCreate,
    CollaborationOut,
    DatabaseSpec,
    KillOut,
    KillTask,
    Msg,
    NodeCreate,
    NodeCreatedOut,
    NodeOut,
    OrganizationCreate,
    OrganizationInput,
    OrganizationOut,
    Page,
    RoleOut,
    RunOut,
    TaskCreate,
    TaskOut,
    TaskStatusOut,
    UserCreate,
    UserOut,
)
from v6flow.status import RunStatus

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

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


@dataclass(frozen=True)
class Subject:
    """Ask the client for the logged-in user's id (it logs in first when needed)."""


@dataclass(frozen=True)
class BlobStatus:
    """Ask the client for the server's :class:`~v6flow.schemas.BlobStoreStatusOut` (cached)."""


@dataclass(frozen=True)
class BlobUpload:
    """Stream ``payload`` (already the blob's bytes) to ``POST /blobstream``; answer: UUID."""

    payload: bytes


@dataclass(frozen=True)
class BlobDownload:
    """Stream ``GET /blobstream/<blob_id>`` and base64-decode it; answer: the payload bytes."""

    blob_id: str



@dataclass(frozen=True)
class Keys:
    """Ask the client for its :class:`~v6flow.client._e2e.ClientEncryption` (it sets up a
    private key it was given first, see :func:`encryption_setup`)."""


Question = Call | Subject | BlobStatus | BlobUpload | BlobDownload | Keys
Op = Generator[Question, Any, T]
"""An operation: yields calls (and questions), is sent each answer, returns the value."""


# -- building requests and reading answers ----------------------------------------------
def request_body(model: type[M], **fields: Any) -> dict[str, Any]:
    """The JSON of a request model built from ``fields`` (None fields left out).

    Raises:
        BadRequest: the fields do not fit the model (the server would answer 400); the
            message names each field.
    """
    try:
        built = model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise BadRequest(f"Request body is incorrect ({model.__name__}): "
                         f"{problems(exc)}") from None
    return built.model_dump(mode="json", exclude_unset=True)


def problems(exc: ValidationError) -> str:
    """What failed, field by field, without the values (they may be secrets)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                     for e in exc.errors())


def parse(model: type[M], body: Any, what: str) -> M:
    """``body`` read as ``model``.

    Raises:
        DeserializationError: the answer does not match the contract.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise DeserializationError(f"{what} answered something that is not a "
                                   f"{model.__name__}: {problems(exc)}") from None


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def single(method: str, path: str, model: type[M], *, params: Mapping[str, Any] | None = None,
           json: Any = None) -> Op[M]:
    """One request whose answer is one ``model``."""
    body = yield Call(method, path, _drop_none(params or {}) or None, json)
    return parse(model, body, f"{method} /{path}")


def paged(path: str, model: type[M], params: Mapping[str, Any] | None = None) -> Op[list[M]]:
    """All items of a paginated listing, following ``links.next`` (CONTRACT §3.3)."""
    items: list[M] = []
    page_type = Page[model]  # type: ignore[valid-type]
    page = 1
    while True:
        query = {**_drop_none(params or {}), "page": page, "per_page": PER_PAGE}
        body = yield Call("GET", path, query)
        current = parse(page_type, body, f"GET /{path}")
        items.extend(current.data)
        if current.links.next is None or not current.data:
            return items
        page += 1


def log_tail(log: str | None, lines: int = 20) -> str:
    """The last ``lines`` lines of a run log."""
    return "\n".join((log or "").splitlines()[-lines:])


# -- organizations ----------------------------------------------------------------------
def organization_list(*, collaboration_id: int | None = None,
                      name: str | None = None) -> Op[list[OrganizationOut]]:
    """All organizations visible to the caller (of a collaboration, by name)."""
    return paged("organization", OrganizationOut,
                 {"collaboration_id": collaboration_id, "name": name})


def organization_get(id: int) -> Op[OrganizationOut]:
    """One organization."""
    return single("GET", f"organization/{id}", OrganizationOut)


def organization_create(name: str, *, domain: str | None = None, country: str | None = None,
                        address1: str | None = None, address2: str | None = None,
                        zipcode: str | None = None) -> Op[OrganizationOut]:
    """Create an organization."""
    body = request_body(OrganizationCreate, name=name, domain=domain, country=country,
                        address1=address1, address2=address2, zipcode=zipcode)
    return single("POST", "organization", OrganizationOut, json=body)


# -- collaborations ---------------------------------------------------------------------
def collaboration_list(*, organization_id: int | None = None,
                       name: str | None = None) -> Op[list[CollaborationOut]]:
    """All collaborations visible to the caller."""
    return paged("collaboration", CollaborationOut,
                 {"organization_id": organization_id, "name": name})


def collaboration_get(id: int) -> Op[CollaborationOut]:
    """One collaboration."""
    return single("GET", f"collaboration/{id}", CollaborationOut)


def collaboration_encrypted(id: int, e2e: ClientEncryption) -> Op[bool]:
    """Whether a collaboration is encrypted, as first read by this client (then cached)."""
    known = e2e.encrypted(id)
    if known is None:
        collab = yield from collaboration_get(id)
        e2e.note_collaboration(id, collab.encrypted)
        known = e2e.encrypted(id)
    return bool(known)


def collaboration_create(name: str, organization_ids: Sequence[int], *,
                         encrypted: bool = False) -> Op[CollaborationOut]:
    """Create a collaboration of the given organizations."""
    body = request_body(CollaborationCreate, name=name, organization_ids=list(organization_ids),
                        encrypted=encrypted)
    return single("POST", "collaboration", CollaborationOut, json=body)


# -- nodes ------------------------------------------------------------------------------
def node_list(*, collaboration_id: int | None = None,
              organization_id: int | None = None) -> Op[list[NodeOut]]:
    """All nodes visible to the caller."""
    return paged("node", NodeOut, {"collaboration_id": collaboration_id,
                                   "organization_id": organization_id})


def node_get(id: int) -> Op[NodeOut]:
    """One node."""
    return single("GET", f"node/{id}", NodeOut)


def node_create(collaboration_id: int, organization_id: int | None = None,
                name: str | None = None) -> Op[NodeCreatedOut]:
    """Register a node; the answer's ``api_key`` is shown only this once."""
    body = request_body(NodeCreate, collaboration_id=collaboration_id,
                        organization_id=organization_id, name=name)
    return single("POST", "node", NodeCreatedOut, json=body)


# -- users and roles --------------------------------------------------------------------
def user_list(*, organization_id: int | None = None,
              username: str | None = None) -> Op[list[UserOut]]:
    """All users visible to the caller."""
    return paged("user", UserOut, {"organization_id": organization_id, "username": username})


def user_get(id: int | None = None) -> Op[UserOut]:
    """One user; without ``id`` the logged-in user."""
    if id is None:
        id = int((yield Subject()))
    return (yield from single("GET", f"user/{id}", UserOut))


def user_create(username: str, password: str, organization_id: int | None = None, *,
                firstname: str | None = None, lastname: str | None = None,
                email: str | None = None, roles: Sequence[int] | None = None,
                rules: Sequence[int] | None = None) -> Op[UserOut]:
    """Create a user (names and e-mail default to ones made from ``username``)."""
    body = request_body(
        UserCreate, username=username, password=password, organization_id=organization_id,
        firstname=firstname or username, lastname=lastname or username,
        email=email or f"{username}@example.org",
        roles=list(roles) if roles is not None else None,
        rules=list(rules) if rules is not None else None)
    return single("POST", "user", UserOut, json=body)


def role_list(*, name: str | None = None) -> Op[list[RoleOut]]:
    """All roles visible to the caller."""
    return paged("role", RoleOut, {"name": name})


def role_get(id: int) -> Op[RoleOut]:
    """One role."""
    return single("GET", f"role/{id}", RoleOut)


# -- tasks ------------------------------------------------------------------------------
def task_create_body(*, collaboration_id: int, organizations: Sequence[int], image: str,
                     method: str, args: Sequence[Any] | None = None,
                     kwargs: Mapping[str, Any] | None = None,
                     databases: Sequence[Mapping[str, Any] | DatabaseSpec] | None = None,
                     name: str | None = None, description: str | None = None,
                     flow_run_id: str | None = None) -> dict[str, Any]:
    """The ``POST /task`` body (CONTRACT §3.2): the same unencrypted input for every org.

    Raises:
        BadRequest: no organization, or a field the server would refuse.
    """
    encoded = wire.input_to_wire(wire.make_input(method, list(args or []), dict(kwargs or {})))
    return request_body(
        TaskCreate, name=name or method, description=description or "", image=image,
        collaboration_id=collaboration_id, flow_run_id=flow_run_id,
        organizations=[OrganizationInput(id=int(org), input=encoded) for org in organizations],
        databases=[db if isinstance(db, DatabaseSpec) else DatabaseSpec.model_validate(db)
                   for db in (databases if databases is not None else DEFAULT_DATABASES)])


def task_create(collaboration_id: int, organizations: Sequence[int], image: str, method: str,
                args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                databases: Sequence[Mapping[str, Any] | DatabaseSpec] | None = None,
                name: str | None = None, description: str | None = None,
                flow_run_id: str | None = None) -> Op[TaskOut]:
    """Create a task for ``organizations`` running ``method`` of ``image``.

    ``flow_run_id`` records the Prefect flow run the task belongs to (the UI links to it).

    In an encrypted collaboration each organization's input is encrypted for it
    (``v6flow-aead-1``); the client needs its organization's private key for that
    (``Client(private_key=...)`` or ``setup_encryption``). Otherwise an input larger than
    the server's blob threshold is uploaded to its blob store (once per organization: an
    upload is named once) and the task names it by UUID.

    Raises:
        NoPrivateKey: the collaboration is encrypted and the client has no key.
        NoPublicKey: a target organization has no public key.
    """
    body = task_create_body(collaboration_id=collaboration_id, organizations=organizations,
                            image=image, method=method, args=args, kwargs=kwargs,
                            databases=databases, name=name, description=description,
                            flow_run_id=flow_run_id)
    e2e: ClientEncryption = yield Keys()
    nonces: dict[int, str] = {}
    if not e2e.by_node_proxy and (yield from collaboration_encrypted(collaboration_id, e2e)):
        nonces = yield from encrypt_inputs(body, collaboration_id, e2e)
    else:
        yield from _inputs_to_blob_store(body)
    task = yield from single("POST", "task", TaskOut, json=body)
    e2e.remember_inputs(task.id, nonces)
    return task


def _inputs_to_blob_store(body: dict[str, Any]) -> Op[None]:
    """Replace inputs longer than the server's blob threshold by uploaded blobs (in place)."""
    status: BlobStoreStatusOut = yield BlobStatus()
    encoded = body["organizations"][0]["input"] if body["organizations"] else ""
    if status.blob_store_enabled and len(encoded) > (status.threshold_bytes or 0):
        for target in body["organizations"]:
            target["input"] = yield BlobUpload(encoded.encode("ascii"))


def encrypt_inputs(body: dict[str, Any], collaboration_id: int,
                   e2e: ClientEncryption) -> Op[dict[int, str]]:
    """Encrypt each ``organizations[].input`` of a task body for its organization (in place).

    Returns:
        ``{organization_id: nonce}`` of the envelopes (results are bound to them).

    Raises:
        NoPrivateKey: no key was set up (it is needed to read the results).
        NoPublicKey: a target organization has no public key.
    """
    if e2e.private_key is None or e2e.organization_id is None:
        raise NoPrivateKey(
            f"collaboration {collaboration_id} is encrypted: give the client your "
            "organization's private key (Client(..., private_key=PATH) or "
            "client.setup_encryption(PATH)) to encrypt task inputs and read results")
    crypto = crypto_module()
    nonces: dict[int, str] = {}
    for target in body["organizations"]:
        org = yield from organization_get(target["id"])
        if not org.public_key:
            raise NoPublicKey(org.id)
        plain = wire.b64decode_str(target["input"])
        target["input"] = crypto.aead_encrypt(
            plain, crypto.public_key_from_wire(org.public_key), crypto.input_binding(
                collaboration_id=collaboration_id, sender=e2e.organization_id,
                recipient=org.id))
        nonces[org.id] = crypto.aead_nonce(target["input"])
    return nonces


def task_get(id: int, *, include_results: bool = False) -> Op[TaskOut]:
    """One task (``include_results``: its results embedded)."""
    params = {"include": "results"} if include_results else None
    return single("GET", f"task/{id}", TaskOut, params=params)


def task_list(*, collaboration_id: int | None = None, parent_id: int | None = None,
              job_id: int | None = None, name: str | None = None,
              status: str | None = None) -> Op[list[TaskOut]]:
    """Tasks matching ``collaboration_id``, ``parent_id``, ``job_id``, ``name``, ``status``."""
    return paged("task", TaskOut, {"collaboration_id": collaboration_id,
                                   "parent_id": parent_id, "job_id": job_id, "name": name,
                                   "status": status})


def task_status(id: int) -> Op[RunStatus]:
    """The task's status, derived from its runs (``GET /task/<id>/status``)."""
    answer = yield from single("GET", f"task/{id}/status", TaskStatusOut)
    return answer.status


def task_delete(id: int) -> Op[None]:
    """Delete the task with its runs, results and subtasks (running ones are killed)."""
    yield from single("DELETE", f"task/{id}", Msg)


def task_kill(id: int) -> Op[KillOut]:
    """Ask the nodes to stop the task's runs; the answer lists the runs reached."""
    return single("POST", "kill/task", KillOut, json=request_body(KillTask, id=id))


# -- runs and results -------------------------------------------------------------------
def run_list(*, task_id: int | None = None, organization_id: int | None = None,
             include_input: bool = False) -> Op[list[RunOut]]:
    """All runs (of a task, of an organization); ``include_input``: with their inputs."""
    return paged("run", RunOut, {"task_id": task_id, "organization_id": organization_id,
                                 "include": "input" if include_input else None})


def run_get(id: int, *, include_task: bool = False) -> Op[RunOut]:
    """One run (``include_task``: its task embedded)."""
    params = {"include": "task"} if include_task else None
    return single("GET", f"run/{id}", RunOut, params=params)
