"""End-to-end encryption of task inputs and results: keys and three wire schemes.

Every ``*_encrypt`` has its ``*_decrypt`` beside it (symmetric pure functions, apart from the
random keys and nonces), each pair with a round-trip and a tamper test
(tests/v6flow/test_crypto.py). Nothing here does I/O. The schemes, told apart without a key
by :func:`scheme_of`:

``plain`` (unencrypted collaborations; v4's ``DummyCryptor``)
    ``base64(P)``.
``v4`` (vantage6 4.x, CONTRACT §5; read and written for v4 clients, nodes and algorithms)
    ``base64(EK) "$" base64(IV) "$" base64(C)`` with K a random 32-byte key, IV 16 random
    bytes, ``C = AES-256-CTR(K, IV, P)`` and ``EK = RSA-PKCS#1-v1.5(K)``. No integrity: a
    changed bit of C changes the same bit of P, unnoticed.
``v6flow-aead-1`` (v6flow's default; authenticated)
    ``"v6flow-aead-1." base64(EK) "." base64(N) "." base64(C)`` with K a random 32-byte key,
    N 12 random bytes, ``C = AES-256-GCM(K, N, P, AAD)`` (ciphertext followed by the 16-byte
    tag) and ``EK = RSA-OAEP(K)`` with SHA-256 as hash and as MGF1 hash and no label. The
    prefix holds ``-`` and ``.``, which neither base64 nor v4's ``$`` form contains.
    The AAD (:meth:`Binding.aad`, UTF-8) names where the payload belongs, so a payload that is
    moved is refused like a changed one::

        v6flow-aead-1;field=input;collaboration=<id>;from=<org>;to=<org>
        v6flow-aead-1;field=result;collaboration=<id>;task=<id>;from=<org>;to=<org>;input=<N>

    An input goes ``from`` the task's initiating organization ``to`` the organization that
    runs it (the task id does not exist yet when it is encrypted); a result goes ``from`` the
    organization that ran it ``to`` the initiating organization, and names the task and the
    nonce ``N`` (base64, as in the input envelope) of the input it was computed on.

    Both primitives are in WebCrypto (``RSA-OAEP`` with ``hash: "SHA-256"``, ``AES-GCM`` with
    ``additionalData``), so a browser can decrypt results; v4's PKCS#1 v1.5 is not.

Keys: one RSA key pair per organization (4096 bits, e=65537), the private key as PEM
"TraditionalOpenSSL" (``BEGIN RSA PRIVATE KEY``, no passphrase) exactly like v4's
``RSACryptor.create_new_rsa_key``. On the API a public key is ``base64(PEM
SubjectPublicKeyInfo)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from v6flow.errors import DecryptionError, InvalidKey, NoPrivateKey, TamperedPayload, WrongKey

# The scheme's names and its recognition need no key: they live in wire, re-exported here.
from v6flow.wire import AEAD_TAG as AEAD_TAG
from v6flow.wire import V4_SEPARATOR as V4_SEPARATOR
from v6flow.wire import Scheme as Scheme
from v6flow.wire import scheme_of as scheme_of

AEAD_SEPARATOR = "."
CONTENT_KEY_BYTES = 32
V4_IV_BYTES = 16
AEAD_NONCE_BYTES = 12
AEAD_TAG_BYTES = 16
KEY_BITS = 4096
MIN_KEY_BITS = 2048
PUBLIC_EXPONENT = 65537

RSAPrivateKey = rsa.RSAPrivateKey
RSAPublicKey = rsa.RSAPublicKey


class Payload(StrEnum):
    """Which field of a run a payload is."""

    INPUT = "input"
    RESULT = "result"


@dataclass(frozen=True)
class Binding:
    """Where an authenticated payload belongs: its AAD (see the module docstring).

    Build one with :func:`input_binding` or :func:`result_binding`.
    """

    field: Payload
    collaboration_id: int
    sender: int
    recipient: int
    task_id: int | None = None
    input_nonce: str | None = None

    def aad(self) -> bytes:
        """The associated data, e.g. ``v6flow-aead-1;field=input;collaboration=3;from=1;to=2``."""
        parts = [AEAD_TAG, f"field={self.field.value}", f"collaboration={self.collaboration_id}"]
        if self.field is Payload.RESULT:
            parts.append(f"task={self.task_id}")
        parts += [f"from={self.sender}", f"to={self.recipient}"]
        if self.field is Payload.RESULT:
            parts.append(f"input={self.input_nonce}")
        return ";".join(parts).encode("utf-8")


def input_binding(*, collaboration_id: int, sender: int, recipient: int) -> Binding:
    """The binding of a task input: from the initiating organization to a target one."""
    return Binding(Payload.INPUT, collaboration_id, sender, recipient)


def result_binding(*, collaboration_id: int, task_id: int, sender: int, recipient: int,
                   input_nonce: str) -> Binding:
    """The binding of a result: from the organization that ran it to the initiating one,
    for one task and the input (its envelope nonce, :func:`aead_nonce`) it was computed on."""
    return Binding(Payload.RESULT, collaboration_id, sender, recipient, task_id, input_nonce)


# -- keys --------------------------------------------------------------------------------
def generate_private_key(bits: int = KEY_BITS) -> RSAPrivateKey:
    """A new RSA key pair (e=65537), as v4's ``create_new_rsa_key`` makes them."""
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)


def private_key_to_pem(key: RSAPrivateKey) -> bytes:
    """PEM ``BEGIN RSA PRIVATE KEY`` without passphrase: the format v4 reads and writes."""
    return key.private_bytes(encoding=serialization.Encoding.PEM,
                             format=serialization.PrivateFormat.TraditionalOpenSSL,
                             encryption_algorithm=serialization.NoEncryption())


def private_key_from_pem(pem: bytes) -> RSAPrivateKey:
    """Load an RSA private key (PKCS#1 or PKCS#8 PEM, no passphrase, >= 2048 bits).

    Raises:
        InvalidKey: not such a key (the message says why, never the key).
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise InvalidKey("the private key is protected by a passphrase; v6flow (like "
                         "vantage6) needs it without one") from None
    except (ValueError, UnicodeError) as exc:
        raise InvalidKey(f"not a PEM private key ({_first_line(exc)})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidKey(f"not an RSA key but {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise InvalidKey(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} needed")
    return key


def public_key_to_wire(key: RSAPrivateKey | RSAPublicKey) -> str:
    """``base64(PEM SubjectPublicKeyInfo)``: an organization's ``public_key`` on the API."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    pem = public.public_bytes(encoding=serialization.Encoding.PEM,
                              format=serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(pem).decode("ascii")


def public_key_from_wire(text: str) -> RSAPublicKey:
    """Inverse of :func:`public_key_to_wire`.

    Raises:
        InvalidKey: not the base64 of a PEM RSA public key of at least 2048 bits.
    """
    try:
        pem = base64.b64decode(text.encode("ascii"), validate=True)
        key = serialization.load_pem_public_key(pem)
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidKey(f"not the base64 encoding of a PEM public key ({_first_line(exc)})"
                         ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidKey(f"not an RSA public key but {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise InvalidKey(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} needed")
    return key


def same_public_key(wire: str, key: RSAPrivateKey) -> bool:
    """Whether the API's ``public_key`` text is the public half of ``key``."""
    try:
        return public_key_from_wire(wire).public_numbers() == key.public_key().public_numbers()
    except InvalidKey:
        return False


# -- schemes -----------------------------------------------------------------------------
def plain_encrypt(data: bytes) -> str:
    """The ``plain`` scheme: standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def plain_decrypt(text: str) -> bytes:
    """Inverse of :func:`plain_encrypt`.

    Raises:
        DecryptionError: not base64.
    """
    return _b64(text, "the payload")


def v4_encrypt(data: bytes, public_key: RSAPublicKey) -> str:
    """The v4 scheme (vantage6 ``RSACryptor.encrypt_bytes_to_str``)."""
    key, iv = os.urandom(CONTENT_KEY_BYTES), os.urandom(V4_IV_BYTES)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    body = encryptor.update(data) + encryptor.finalize()
    wrapped = public_key.encrypt(key, padding.PKCS1v15())
    return V4_SEPARATOR.join(base64.b64encode(part).decode("ascii")
                             for part in (wrapped, iv, body))


def v4_decrypt(text: str, private_key: RSAPrivateKey) -> bytes:
    """Inverse of :func:`v4_encrypt`, with v4's two fallbacks for what its web UI wrote: a
    content key sent as base64 text, and a plaintext that is itself base64 of JSON.

    The scheme has no integrity check: an altered body decrypts to altered bytes.

    Raises:
        WrongKey: the content key does not unwrap to 32 bytes with this private key.
        DecryptionError: not ``key$iv$body`` of base64 parts.
    """
    parts = text.split(V4_SEPARATOR, 2)
    if len(parts) != 3:
        raise DecryptionError("not a v4 payload (base64 key$iv$body)")
    wrapped, iv, body = (_b64(part, name) for part, name in
                         zip(parts, ("the wrapped key", "the IV", "the body"), strict=True))
    if len(iv) != V4_IV_BYTES:
        raise DecryptionError(f"the IV has {len(iv)} bytes, not {V4_IV_BYTES}")
    try:
        key = private_key.decrypt(wrapped, padding.PKCS1v15())
    except ValueError:
        key = b""
    if len(key) != CONTENT_KEY_BYTES:
        key = _ui_content_key(key)
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return _ui_plaintext(decryptor.update(body) + decryptor.finalize())


def aead_encrypt(data: bytes, public_key: RSAPublicKey, binding: Binding) -> str:
    """The ``v6flow-aead-1`` scheme: AES-256-GCM under a key wrapped with RSA-OAEP-SHA256."""
    key, nonce = AESGCM.generate_key(bit_length=8 * CONTENT_KEY_BYTES), os.urandom(
        AEAD_NONCE_BYTES)
    body = AESGCM(key).encrypt(nonce, data, binding.aad())
    wrapped = public_key.encrypt(key, _OAEP)
    return AEAD_SEPARATOR.join([AEAD_TAG, *(base64.b64encode(part).decode("ascii")
                                            for part in (wrapped, nonce, body))])


def aead_decrypt(text: str, private_key: RSAPrivateKey, binding: Binding) -> bytes:
    """Inverse of :func:`aead_encrypt`; ``binding`` must be the one it was encrypted with.

    Raises:
        WrongKey: the content key cannot be unwrapped with this private key.
        TamperedPayload: the tag does not verify (altered, or another binding).
        DecryptionError: not a ``v6flow-aead-1`` envelope.
    """
    wrapped, nonce, body = _aead_parts(text)
    try:
        key = private_key.decrypt(wrapped, _OAEP)
    except ValueError:
        raise WrongKey("the content key cannot be unwrapped with this private key: the payload "
                       "was encrypted for another key (wrong private key, or the "
                       "organization's public key changed), or its key part was altered"
                       ) from None
    if len(key) != CONTENT_KEY_BYTES:
        raise TamperedPayload(f"the content key has {len(key)} bytes, not {CONTENT_KEY_BYTES}")
    try:
        return AESGCM(key).decrypt(nonce, body, binding.aad())
    except InvalidTag:
        raise TamperedPayload(
            "authentication failed: the payload was altered, or it belongs to another "
            f"{'task, ' if binding.field is Payload.RESULT else ''}organization or "
            f"collaboration than this {binding.field.value}") from None


def aead_nonce(text: str) -> str:
    """The nonce of a ``v6flow-aead-1`` envelope (base64, as written), read without a key.

    Raises:
        DecryptionError: not a well-formed ``v6flow-aead-1`` envelope.
    """
    _aead_parts(text)
    return text.split(AEAD_SEPARATOR)[2]


def check_envelope(text: str) -> Scheme:
    """The scheme of ``text``, checking the form of an encrypted one (no key needed).

    This is what a server can check without keys: a ``v4`` payload is three base64 parts
    with a 16-byte IV, a ``v6flow-aead-1`` one four parts with a 12-byte nonce and a body of
    at least the tag. A ``plain`` payload is returned as such (it is not checked).

    Raises:
        DecryptionError: an encrypted payload of the wrong form.
    """
    scheme = scheme_of(text)
    if scheme is Scheme.AEAD:
        _aead_parts(text)
    elif scheme is Scheme.V4:
        parts = text.split(V4_SEPARATOR, 2)
        if len(parts) != 3 or not parts[0]:
            raise DecryptionError("not a v4 payload (base64 key$iv$body)")
        if len(_b64(parts[1], "the IV")) != V4_IV_BYTES:
            raise DecryptionError(f"the IV is not {V4_IV_BYTES} bytes")
        _b64(parts[0], "the wrapped key")
        _b64(parts[2], "the body")
    return scheme


def encrypt(data: bytes, scheme: Scheme, public_key: RSAPublicKey | None,
            binding: Binding | None) -> str:
    """Encrypt ``data`` in ``scheme`` (``plain`` needs no key, ``v6flow-aead-1`` a binding).

    Raises:
        ValueError: the key or binding the scheme needs is missing.
    """
    if scheme is Scheme.PLAIN:
        return plain_encrypt(data)
    if public_key is None:
        raise ValueError(f"the {scheme.value} scheme needs the recipient's public key")
    if scheme is Scheme.V4:
        return v4_encrypt(data, public_key)
    if binding is None:
        raise ValueError("the v6flow-aead-1 scheme needs a binding")
    return aead_encrypt(data, public_key, binding)


def decrypt(text: str, private_key: RSAPrivateKey | None, binding: Binding | None) -> bytes:
    """Decrypt ``text`` in whichever scheme it is written (inverse of :func:`encrypt`).

    Raises:
        NoPrivateKey: the payload is encrypted and ``private_key`` is None.
        DecryptionError: it cannot be decrypted (WrongKey, TamperedPayload).
        ValueError: a ``v6flow-aead-1`` payload and no binding.
    """
    scheme = scheme_of(text)
    if scheme is Scheme.PLAIN:
        return plain_decrypt(text)
    if private_key is None:
        raise NoPrivateKey(f"the payload is encrypted ({scheme.value}) and no private key is "
                           "set up to decrypt it")
    if scheme is Scheme.V4:
        return v4_decrypt(text, private_key)
    if binding is None:
        raise ValueError("a v6flow-aead-1 payload needs its binding to be decrypted")
    return aead_decrypt(text, private_key, binding)


# -- helpers -----------------------------------------------------------------------------
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(),
                     label=None)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise DecryptionError(f"{what} is not base64") from None


def _aead_parts(text: str) -> tuple[bytes, bytes, bytes]:
    parts = text.split(AEAD_SEPARATOR)
    if len(parts) != 4 or parts[0] != AEAD_TAG:
        raise DecryptionError(f"not a {AEAD_TAG} envelope ({AEAD_TAG}.key.nonce.body)")
    wrapped, nonce, body = (_b64(part, name) for part, name in
                            zip(parts[1:], ("the wrapped key", "the nonce", "the body"),
                                strict=True))
    if len(nonce) != AEAD_NONCE_BYTES:
        raise DecryptionError(f"the nonce has {len(nonce)} bytes, not {AEAD_NONCE_BYTES}")
    if len(body) < AEAD_TAG_BYTES or not wrapped:
        raise DecryptionError("the envelope is truncated")
    return wrapped, nonce, body


def _ui_content_key(key: bytes) -> bytes:
    """v4's web UI wraps the content key as base64 text; anything else is a wrong key."""
    try:
        decoded = base64.b64decode(key, validate=True) if key else b""
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != CONTENT_KEY_BYTES:
        raise WrongKey("the content key does not unwrap to 32 bytes with this private key: "
                       "the payload was encrypted for another key (wrong private key, or the "
                       "organization's public key changed), or it was altered")
    return decoded


def _ui_plaintext(data: bytes) -> bytes:
    """v4's web UI base64-encodes the plaintext once more; undo that when it is so."""
    try:
        json.loads(data.decode("utf-8"))
        return data
    except (UnicodeDecodeError, ValueError):
        pass
    try:
        return base64.b64decode(data, validate=True) if data else data
    except (binascii.Error, ValueError):
        return data
