"""Results (decoded, fetched from the blob store, decrypted) and the client's encryption
setup: I/O-free operations like those of :mod:`v6flow.client._ops`, whose helpers they use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from v6flow import wire
from v6flow.client._e2e import ClientEncryption, crypto_module
from v6flow.client._ops import (
    BlobDownload,
    Keys,
    Op,
    collaboration_encrypted,
    organization_get,
    paged,
    run_get,
    run_list,
    single,
    task_get,
    user_get,
)
from v6flow.errors import (
    DecryptionError,
    NoPrivateKey,
    PublicKeyMismatch,
    TamperedPayload,
)
from v6flow.schemas import (
    OrganizationOut,
    OrganizationUpdate,
    ResultOut,
)


def result_list(*, task_id: int | None = None) -> Op[list[ResultOut]]:
    """All results (of a task); ``result`` is the encoded output (see ``from_task``)."""
    return paged("result", ResultOut, {"task_id": task_id})


def result_get(run_id: int) -> Op[ResultOut]:
    """The result of one run (``GET /result/<run id>``)."""
    return single("GET", f"result/{run_id}", ResultOut)


def result_value(run_id: int) -> Op[Any]:
    """The decoded JSON result of one run (None when it has none); a result in the blob
    store is fetched by stream.

    Raises:
        DeserializationError: the result is not base64 of UTF-8 JSON.
    """
    item = yield from result_get(run_id)
    return (yield from decoded_result(item))


def decoded_result(item: ResultOut) -> Op[Any]:
    """The JSON value of a result item (fetched from the blob store when it is there)."""
    if not item.result:
        return None
    if item.blob_storage_used:
        payload: bytes = yield BlobDownload(item.result)
        return wire.json_from_bytes(payload)
    return wire.result_from_wire(item.result)


def result_from_task(task_id: int) -> Op[dict[int, Any]]:
    """``{organization_id: decoded JSON result}`` of the task's finished runs.

    Runs without a result (failed or unfinished) are left out; results in the blob store
    are fetched by stream, encrypted results are decrypted with the client's key.
    Raises:
        DecryptionError: a result cannot be decrypted (WrongKey, TamperedPayload; names the
            run and the organization).
        NoPrivateKey: a result is encrypted and the client has no key.
    """
    runs = {run.id: run for run in (yield from run_list(task_id=task_id, include_input=True))}
    results = yield from result_list(task_id=task_id)
    context = yield from result_context(task_id)
    out: dict[int, Any] = {}
    for item in results:
        run = runs.get(item.run.id)
        if run is None or not item.result:
            continue
        if item.blob_storage_used:  # in the blob store (unencrypted): by stream
            _refuse_plain_in_encrypted(context, run_id=run.id,
                                       organization_id=run.organization.id)
            out[run.organization.id] = yield from decoded_result(item)
            continue
        out[run.organization.id] = open_result(
            item.result, context, run_id=run.id, organization_id=run.organization.id,
            run_input=run.input)
    return out


@dataclass(frozen=True)
class ResultContext:
    """What decrypting a task's results needs to know about the task."""

    task_id: int
    collaboration_id: int
    init_org_id: int
    encrypted: bool
    e2e: ClientEncryption


def result_context(task_id: int, *, collaboration_id: int | None = None,
                   init_org_id: int | None = None) -> Op[ResultContext]:
    """What decrypting the task's results needs: its collaboration (and whether that is
    encrypted) and its initiating organization; the task is read only when needed."""
    e2e: ClientEncryption = yield Keys()
    if e2e.by_node_proxy:  # the proxy decrypted: nothing to check here
        return ResultContext(task_id, collaboration_id or 0, init_org_id or 0, False, e2e)
    if collaboration_id is None:
        task = yield from task_get(task_id)
        collaboration_id, init_org_id = task.collaboration.id, task.init_org.id
    encrypted = yield from collaboration_encrypted(collaboration_id, e2e)
    if encrypted and init_org_id is None:
        task = yield from task_get(task_id)
        init_org_id = task.init_org.id
    return ResultContext(task_id, collaboration_id, init_org_id or 0, encrypted, e2e)


def _refuse_plain_in_encrypted(context: ResultContext, *, run_id: int,
                               organization_id: int) -> None:
    """An unencrypted result (a blob) where the collaboration encrypts: tampering.

    Raises:
        TamperedPayload: the collaboration is encrypted.
    """
    if context.encrypted and not context.e2e.by_node_proxy:
        raise TamperedPayload(f"the result is not encrypted, but collaboration "
                              f"{context.collaboration_id} is", field="result", run_id=run_id,
                              organization_id=organization_id)


def open_result(text: str, context: ResultContext, *, run_id: int, organization_id: int,
                run_input: str | None) -> Any:
    """A run's ``result`` decrypted (when encrypted) and decoded from JSON.

    ``run_input`` (the run's input as the server holds it) is needed for a
    ``v6flow-aead-1`` result, which is bound to the input it was computed on.

    Raises:
        TamperedPayload: a plaintext result in an encrypted collaboration, a result bound to
            another task, organization or input, or one that was altered.
        WrongKey: it was encrypted for another key.
        NoPrivateKey: it is encrypted and the client has no key.
        DeserializationError: the plaintext is not JSON.
    """
    e2e, scheme = context.e2e, wire.scheme_of(text)
    where: dict[str, Any] = {"field": "result", "run_id": run_id,
                             "organization_id": organization_id}
    if e2e.by_node_proxy or scheme is wire.Scheme.PLAIN:
        if not e2e.by_node_proxy:
            _refuse_plain_in_encrypted(context, run_id=run_id, organization_id=organization_id)
        return wire.result_from_wire(text)
    if e2e.private_key is None:
        raise NoPrivateKey(f"the result of run {run_id} (organization {organization_id}) is "
                           "encrypted: give the client your organization's private key "
                           "(Client(..., private_key=PATH) or client.setup_encryption(PATH))")
    crypto = crypto_module()
    binding = None
    if scheme is wire.Scheme.AEAD:
        nonce = _input_nonce(crypto, context, organization_id, run_input, where)
        binding = crypto.result_binding(
            collaboration_id=context.collaboration_id, task_id=context.task_id,
            sender=organization_id, recipient=context.init_org_id, input_nonce=nonce)
    try:
        plain = crypto.decrypt(text, e2e.private_key, binding)
    except DecryptionError as exc:
        raise exc.about(field="result", run_id=run_id, organization_id=organization_id
                        ) from None
    return wire.json_from_bytes(plain)


def _input_nonce(crypto: Any, context: ResultContext, organization_id: int,
                 run_input: str | None, where: dict[str, Any]) -> str:
    """The nonce of the input a result must be bound to: the one this client sent (when it
    sent it), which the server's copy of the input must match."""
    sent = context.e2e.sent_input(context.task_id, organization_id)
    try:
        stored = crypto.aead_nonce(run_input or "")
    except DecryptionError:
        stored = None
    if sent is not None and stored is not None and sent != stored:
        raise TamperedPayload("the run's input on the server is not the input this client "
                              "sent", **where)
    nonce = sent or stored
    if nonce is None:
        raise TamperedPayload("the run's input is not a v6flow-aead-1 envelope, so its result "
                              "cannot be checked", **where)
    return str(nonce)


def result_of_run(task_id: int, run_id: int, organization_id: int, *,
                  collaboration_id: int | None = None,
                  init_org_id: int | None = None) -> Op[Any]:
    """The decoded (and, when encrypted, decrypted) result of one run; None when empty.

    Raises:
        DecryptionError, NoPrivateKey: see :func:`open_result`.
        DeserializationError: the result is not JSON.
    """
    item = yield from result_get(run_id)
    if not item.result:
        return None
    context = yield from result_context(task_id, collaboration_id=collaboration_id,
                                        init_org_id=init_org_id)
    if item.blob_storage_used:  # in the blob store (unencrypted): by stream
        _refuse_plain_in_encrypted(context, run_id=run_id, organization_id=organization_id)
        return (yield from decoded_result(item))
    run_input = None
    if wire.scheme_of(item.result) is wire.Scheme.AEAD and not context.e2e.by_node_proxy:
        run_input = (yield from run_get(run_id)).input
    return open_result(item.result, context, run_id=run_id, organization_id=organization_id,
                       run_input=run_input)


# -- encryption set-up ------------------------------------------------------------------
def encryption_setup(e2e: ClientEncryption, *, replace_public_key: bool = False
                     ) -> Op[ClientEncryption]:
    """Tie ``e2e``'s key to the logged-in user's organization (v4 ``setup_encryption``).

    The organization's public key is uploaded when the server has none; when the server
    has another one, :class:`~v6flow.errors.PublicKeyMismatch` is raised unless
    ``replace_public_key`` (v4 replaces it always, which locks out a node with the other key).

    Raises:
        PublicKeyMismatch: the server holds another public key for the organization.
        PermissionDenied: the user may not change the organization.
    """
    if e2e.private_key is None:
        return e2e
    crypto = crypto_module()
    user = yield from user_get()
    org = yield from organization_get(user.organization.id)
    if not (org.public_key and crypto.same_public_key(org.public_key, e2e.private_key)):
        if org.public_key and not replace_public_key:
            raise PublicKeyMismatch(org.id)
        update = OrganizationUpdate(public_key=crypto.public_key_to_wire(e2e.private_key))
        yield from single("PATCH", f"organization/{org.id}", OrganizationOut,
                          json=update.model_dump(mode="json", exclude_unset=True))
    e2e.organization_id = org.id
    return e2e
