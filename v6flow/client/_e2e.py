"""End-to-end encryption in the client: the organization's key, and what the client remembers.

A client encrypts each task input for its target organization (``v6flow-aead-1``, bound to
the collaboration and both organizations) and decrypts results of both schemes (``v4`` and
``v6flow-aead-1``, the latter bound to the task, the organizations and the input it was
computed on). It follows the collaboration's ``encrypted`` flag (read once per client) and
refuses a plaintext result where the collaboration is encrypted.

Inside an algorithm container (``by_node_proxy``) the client never encrypts: the node proxy
encrypts subtask inputs and decrypts their results (CONTRACT §2.3).

:mod:`v6flow.crypto` (the ``cryptography`` package, extra ``v6flow[crypto]``) is imported
only when a key is loaded or a payload is encrypted.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from v6flow.errors import EncryptionError, InvalidKey

if TYPE_CHECKING:
    from v6flow.crypto import RSAPrivateKey

KeySource = str | os.PathLike[str] | bytes | SecretStr
"""A private key: a path to a PEM file, or the PEM itself (``bytes`` or ``SecretStr``)."""

#: How many sent inputs (task, organization) a client remembers to check results against.
REMEMBERED_INPUTS = 10_000


def crypto_module() -> Any:
    """:mod:`v6flow.crypto`, or an EncryptionError that says how to install it."""
    try:
        from v6flow import crypto
    except ImportError as exc:  # pragma: no cover - the crypto extra is missing
        raise EncryptionError("encrypted collaborations need the 'cryptography' package: "
                              "pip install 'v6flow[crypto]'") from exc
    return crypto


def read_private_key(source: KeySource) -> RSAPrivateKey:
    """Load a private key from a PEM file path, PEM bytes or a ``SecretStr`` holding PEM.

    Raises:
        InvalidKey: unreadable, or not a usable RSA key (never shows the key).
    """
    crypto = crypto_module()
    if isinstance(source, SecretStr):
        pem = source.get_secret_value().encode("utf-8")
    elif isinstance(source, bytes):
        pem = source
    elif isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        pem = source.encode("utf-8")
    else:
        path = Path(source).expanduser()
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise InvalidKey(f"cannot read the private key file {path}: {exc.strerror}"
                             ) from None
    key: RSAPrivateKey = crypto.private_key_from_pem(pem)
    return key


class ClientEncryption:
    """A client's encryption state: its key and organization, and what it has seen.

    Attributes:
        private_key: the organization's private key (None: none given).
        organization_id: the organization the key belongs to (known once set up).
        by_node_proxy: inside an algorithm container: the node proxy encrypts and decrypts.
    """

    def __init__(self, *, private_key: RSAPrivateKey | None = None,
                 organization_id: int | None = None, by_node_proxy: bool = False) -> None:
        """Hold the key; nothing is checked against the server here."""
        self.private_key = private_key
        self.organization_id = organization_id
        self.by_node_proxy = by_node_proxy
        self._encrypted: dict[int, bool] = {}
        self._sent: OrderedDict[tuple[int, int], str] = OrderedDict()

    def __repr__(self) -> str:  # never the key
        return (f"ClientEncryption(key={'set' if self.private_key is not None else 'none'}, "
                f"organization_id={self.organization_id}, by_node_proxy={self.by_node_proxy})")

    def encrypted(self, collaboration_id: int) -> bool | None:
        """The collaboration's ``encrypted`` flag as first read (None: not read yet)."""
        return self._encrypted.get(collaboration_id)

    def note_collaboration(self, collaboration_id: int, encrypted: bool) -> None:
        """Remember a collaboration's flag: later reads keep the first one (no downgrade)."""
        self._encrypted.setdefault(collaboration_id, encrypted)

    def remember_inputs(self, task_id: int, nonces: dict[int, str]) -> None:
        """Remember the nonce of each encrypted input sent with a task (bounded)."""
        for org, nonce in nonces.items():
            self._sent[(task_id, org)] = nonce
        while len(self._sent) > REMEMBERED_INPUTS:
            self._sent.popitem(last=False)

    def sent_input(self, task_id: int, organization_id: int) -> str | None:
        """The nonce of the input this client sent for (task, organization), if it did."""
        return self._sent.get((task_id, organization_id))
