"""Password hashing (argon2id through pwdlib) and API-key hashing (sha256).

New hashes are argon2id in the PHC format (``$argon2id$v=19$m=…``). Hashes written before
argon2 (``scrypt$n$r$p$salt$hash``) still verify, and :func:`verify_and_update` hands back an
argon2 hash to store in their place after the next successful login.

Every argon2 computation holds one of a few slots, so a burst of logins cannot take more than
``_HASH_SLOTS`` times 19 MiB of memory.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import ensure_str

#: OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane (about 17 ms here).
_ARGON2 = Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1)
_HASH_SLOTS = threading.BoundedSemaphore(4)
_SCRYPT_PREFIX = "scrypt$"
_SCRYPT_DKLEN = 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class LegacyScryptHasher:
    """Verifies the hashes of v6flow before argon2 (``scrypt$n$r$p$salt$hash``, base64 parts).

    It never makes new ones: :data:`_HASHER` always hashes with argon2, so a verified
    scrypt hash is reported as needing a rehash.
    """

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        """True for the ``scrypt$…`` format."""
        try:
            return ensure_str(hash).startswith(_SCRYPT_PREFIX)
        except UnicodeDecodeError:
            return False

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        """Refused by design: scrypt is the legacy format, verified only; new hashes are
        argon2 (this hasher is never the password hasher's first, so pwdlib never asks)."""
        raise TypeError("scrypt is a legacy format: it is verified, new hashes are argon2")

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        """Check in constant time; a malformed hash never matches."""
        try:
            _scheme, n, r, p, salt_b64, digest_b64 = ensure_str(hash).split("$")
            expected = base64.b64decode(digest_b64)
            secret = password.encode("utf-8") if isinstance(password, str) else password
            actual = hashlib.scrypt(secret, salt=base64.b64decode(salt_b64), n=int(n),
                                    r=int(r), p=int(p), dklen=_SCRYPT_DKLEN,
                                    maxmem=_SCRYPT_MAXMEM)
        except (ValueError, TypeError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(expected, actual)

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        """Always: scrypt hashes are replaced by argon2 ones."""
        return True


_HASHER = PasswordHash((_ARGON2, LegacyScryptHasher()))


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string, salt included)."""
    with _HASH_SLOTS:
        return _HASHER.hash(password)


def verify_and_update(password: str, stored: str) -> tuple[bool, str | None]:
    """Check ``password`` against ``stored``; when it matches an outdated hash, rehash it.

    Returns:
        ``(matches, new_hash)``: ``new_hash`` is an argon2 hash to store instead of ``stored``
        (an old scrypt hash, or argon2 with other parameters), else None. A hash of an unknown
        format never matches.
    """
    with _HASH_SLOTS:
        try:
            return _HASHER.verify_and_update(password, stored)
        except UnknownHashError:
            return False, None


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored hash; unknown or malformed hashes never match."""
    return verify_and_update(password, stored)[0]


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the username is unknown (timing hides who exists)."""
    return hash_password(secrets.token_urlsafe(16))


def hash_api_key(api_key: str) -> str:
    """sha256 hex of a (random, high-entropy) node API key: storable and searchable."""
    return hashlib.sha256(api_key.strip().lower().encode("ascii")).hexdigest()


def hash_reset_token(token: str) -> str:
    """sha256 hex of a (random, high-entropy) mailed reset token: storable and searchable."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
