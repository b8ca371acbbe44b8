"""End-to-end encryption at the node: its key, run inputs in, results out, key upload.

The rules (docs/security.md, "Encryption"):

- A node with ``encryption.enabled`` decrypts every run's input with its organization's
  key and refuses an unencrypted one: a server cannot switch it to plaintext.
- A node without a key fails an encrypted run with a reason that says so.
- The result is encrypted in the scheme of the input, for the task's initiating
  organization: ``v4`` for v4 clients and algorithms, ``v6flow-aead-1`` bound to the task and
  to the nonce of the input it was computed on.
- At start the node uploads its organization's public key when the server's differs
  (v4 does the same), so the key in node.yaml is the organization's key.

The proxy uses :meth:`NodeEncryption.seal_input` and :meth:`NodeEncryption.open_result` for
the subtasks of algorithm containers, which never hold a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import structlog

from v6flow.crypto import (
    RSAPrivateKey,
    RSAPublicKey,
    Scheme,
    aead_encrypt,
    aead_nonce,
    decrypt,
    encrypt,
    input_binding,
    plain_decrypt,
    public_key_from_wire,
    public_key_to_wire,
    result_binding,
    same_public_key,
    scheme_of,
    v4_encrypt,
)
from v6flow.errors import (
    DecryptionError,
    EncryptionError,
    NoPrivateKey,
    NoPublicKey,
    TamperedPayload,
    WrongKey,
)
from v6flow.schemas import OrganizationOut, OrganizationUpdate, RunOut, TaskOut
from v6flow.wire import result_to_wire
from v6flow_node.server_link import ServerLink

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Reply:
    """How a run's result is to be encrypted: read from its input and task, no key needed."""

    scheme: Scheme
    collaboration_id: int
    task_id: int
    recipient: int
    input_nonce: str | None


class NodeEncryption:
    """The node's key (None: encryption disabled) and what it does with it."""

    def __init__(self, *, private_key: RSAPrivateKey | None, organization_id: int,
                 collaboration_id: int, link: ServerLink | None = None,
                 subtask_scheme: Scheme = Scheme.AEAD) -> None:
        """Hold the key and the node's ids (no I/O).

        Args:
            private_key: the organization's key, or None when encryption is disabled.
            organization_id: this node's organization.
            collaboration_id: this node's collaboration.
            link: the server link (public keys of other organizations, the key upload).
            subtask_scheme: how :meth:`seal_input` encrypts (``v6flow-aead-1`` or ``v4``).
        """
        self.private_key = private_key
        self.organization_id = organization_id
        self.collaboration_id = collaboration_id
        self.link = link
        self.subtask_scheme = subtask_scheme

    @property
    def enabled(self) -> bool:
        """Whether this node has a key (``encryption.enabled``)."""
        return self.private_key is not None

    def __repr__(self) -> str:  # never the key
        return (f"NodeEncryption(enabled={self.enabled}, "
                f"organization_id={self.organization_id})")

    # -- runs of this node ----------------------------------------------------------------
    def open_input(self, run: RunOut, task: TaskOut) -> bytes:
        """The plaintext input of a run of this node.

        Raises:
            EncryptionError: a plaintext input while encryption is enabled (downgrade).
            NoPrivateKey: an encrypted input and no key.
            DecryptionError: it cannot be decrypted (WrongKey, TamperedPayload).
        """
        text = run.input or ""
        scheme = scheme_of(text)
        collab = task.collaboration.id
        if scheme is Scheme.PLAIN:
            if self.enabled:
                raise EncryptionError(
                    "the input is not encrypted, but this node has encryption enabled "
                    "(encryption.enabled in node.yaml) and runs only encrypted input; "
                    f"collaboration {collab} should be encrypted, or set "
                    "encryption.enabled: false for an unencrypted collaboration")
            return plain_decrypt(text) if text else b""
        if self.private_key is None:
            raise NoPrivateKey(
                f"the input is encrypted ({scheme.value}), but this node has no private key: "
                "set encryption.enabled: true and encryption.private_key (the organization's "
                f"key) in node.yaml to take part in encrypted collaboration {collab}")
        binding = input_binding(collaboration_id=collab, sender=task.init_org.id,
                                recipient=self.organization_id)
        try:
            data = decrypt(text, self.private_key, binding)
        except DecryptionError as exc:
            raise exc.about(field="input") from None
        if scheme is Scheme.V4 and not _is_json(data):
            raise WrongKey("the input decrypted to something that is not JSON: it was "
                           "encrypted for another key (wrong private key), or altered (the v4 "
                           "scheme cannot tell which)", field="input")
        return data

    def reply_for(self, run: RunOut, task: TaskOut) -> Reply:
        """How the result of ``run`` will be encrypted (its input's scheme; no key needed)."""
        text = run.input or ""
        scheme = scheme_of(text)
        nonce = None
        if scheme is Scheme.AEAD:
            try:
                nonce = aead_nonce(text)
            except DecryptionError:
                nonce = None  # the input cannot be opened either; seal_result refuses
        return Reply(scheme=scheme, collaboration_id=task.collaboration.id, task_id=task.id,
                     recipient=task.init_org.id, input_nonce=nonce)

    async def seal_result(self, data: bytes, reply: Reply) -> str:
        """The ``result`` of ``PATCH /run``: ``data`` encrypted as ``reply`` says.

        Raises:
            NoPublicKey: the initiating organization has no public key.
            EncryptionError: its key is unusable, or the input's nonce is unknown.
            ClientError: the server would not give the organization's public key.
        """
        if reply.scheme is Scheme.PLAIN:
            return result_to_wire(data)
        if not data:
            return ""
        public = await self.public_key(reply.recipient)
        if reply.scheme is Scheme.V4:
            return v4_encrypt(data, public)
        if reply.input_nonce is None:
            raise EncryptionError("the input's envelope has no readable nonce to bind to")
        return aead_encrypt(data, public, result_binding(
            collaboration_id=reply.collaboration_id, task_id=reply.task_id,
            sender=self.organization_id, recipient=reply.recipient,
            input_nonce=reply.input_nonce))

    # -- subtasks of algorithm containers (the proxy) ------------------------------------
    def seal_input(self, data: bytes, public_key: str, recipient: int) -> str:
        """A subtask input from this node's organization for ``recipient``.

        Raises:
            NoPublicKey: ``public_key`` is empty.
            InvalidKey: it is not a usable key.
        """
        if not public_key:
            raise NoPublicKey(recipient)
        binding = input_binding(collaboration_id=self.collaboration_id,
                                sender=self.organization_id, recipient=recipient)
        return encrypt(data, self.subtask_scheme, public_key_from_wire(public_key), binding)

    def open_result(self, text: str, *, task_id: int, run_id: int, sender: int,
                    input_text: str | None) -> bytes:
        """The plaintext of a subtask's result, for the container that created the subtask.

        Raises:
            NoPrivateKey: encryption is disabled.
            DecryptionError: it cannot be decrypted; names the run and organization.
        """
        scheme = scheme_of(text)
        if scheme is Scheme.PLAIN:
            if self.enabled:
                raise TamperedPayload("the result is not encrypted in an encrypted "
                                      "collaboration", field="result", run_id=run_id,
                                      organization_id=sender)
            return plain_decrypt(text)
        if self.private_key is None:
            raise NoPrivateKey("the result is encrypted, but this node has no private key")
        binding = None
        if scheme is Scheme.AEAD:
            try:
                nonce = aead_nonce(input_text or "")
            except DecryptionError:
                raise TamperedPayload("the run's input is not a v6flow-aead-1 envelope, so "
                                      "the result cannot be bound to it", field="result",
                                      run_id=run_id, organization_id=sender) from None
            binding = result_binding(collaboration_id=self.collaboration_id, task_id=task_id,
                                     sender=sender, recipient=self.organization_id,
                                     input_nonce=nonce)
        try:
            return decrypt(text, self.private_key, binding)
        except DecryptionError as exc:
            raise exc.about(field="result", run_id=run_id, organization_id=sender) from None

    # -- keys ------------------------------------------------------------------------------
    async def public_key(self, organization_id: int) -> RSAPublicKey:
        """The public key of an organization, read from the server.

        Raises:
            NoPublicKey: it has none.
            InvalidKey: it is not usable.
            ClientError: the server refused.
        """
        assert self.link is not None, "NodeEncryption needs the server link to read keys"
        org = await self.link.call("GET", f"organization/{organization_id}", OrganizationOut)
        if not org.public_key:
            raise NoPublicKey(organization_id)
        return public_key_from_wire(org.public_key)

    async def upload_public_key(self) -> bool:
        """Put this node's public key on its organization when the server's differs.

        Returns:
            Whether it was uploaded.

        Raises:
            ClientError: the server refused to read or change the organization.
        """
        if self.private_key is None:
            return False
        assert self.link is not None, "NodeEncryption needs the server link to upload a key"
        org = await self.link.call("GET", f"organization/{self.organization_id}",
                                   OrganizationOut)
        if org.public_key and same_public_key(org.public_key, self.private_key):
            return False
        if org.public_key:
            log.warning("the organization's public key on the server is not this node's; "
                        "uploading this node's (runs encrypted for the old key will fail)",
                        organization_id=self.organization_id)
        update = OrganizationUpdate(public_key=public_key_to_wire(self.private_key))
        await self.link.call("PATCH", f"organization/{self.organization_id}", OrganizationOut,
                             body=update)
        return True


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True
